"""The TrainingJob's policies (pure layer): reading its workers, classifying a failure, and what
one reconcile does (state, gang restart, suspend, deadline, TTL)."""
