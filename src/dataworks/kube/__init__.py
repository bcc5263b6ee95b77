"""The Kubernetes edge: the one place that builds API clients (I/O layer)."""
