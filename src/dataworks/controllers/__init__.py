"""Controllers: each kind's reconcile decision, hosted alike by the operator runtime and the local runtime.

A controller turns what was observed (the object, its children, a few extra
reads through a `Reader`) into `Actions`, with the kind's pure policy in
`core/<kind>` and its builders in `manifests/`. It does no I/O of its own.
"""
