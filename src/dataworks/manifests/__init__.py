"""Pure builders (pure layer): planned launches -> Kubernetes manifests as dicts."""
