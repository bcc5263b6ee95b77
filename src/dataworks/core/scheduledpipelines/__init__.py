"""The ScheduledPipeline's policies (pure layer): when runs are due, and what a reconcile does."""
