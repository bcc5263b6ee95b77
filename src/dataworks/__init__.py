"""dataworks: a Kubernetes operator and CLI for batch data and ML pipelines.

Layers (see docs/architecture in ARCHITECTURE.md): ``api`` holds the resource
models, ``core`` the pure decisions, ``kube`` the one Kubernetes client edge;
the operator, the CLI, the local executor and the worker sit on top of them.
"""

__version__ = "0.1.0"
