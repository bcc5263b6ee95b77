"""The SequentialJob kind's policy (pure layer): one decision per module, ordered by `planning`."""
