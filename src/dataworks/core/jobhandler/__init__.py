"""The job-completion handler's policies (pure layer): which logs are due, how they fit a
ConfigMap, what one reconcile of a labelled Job does, and which archives expire."""
