"""dataworks: a Kubernetes operator and CLI for batch data and ML pipelines.

Layers (see docs/architecture.md): ``api`` holds the resource models and the
kind registry, ``core`` the pure decisions (``core.kit`` shared, one package
per kind), ``kube`` the one Kubernetes client edge; the operator runtime, the
CLI, the local executor and the worker sit on top of them.
"""

__version__ = "0.1.0"
