"""The Pipeline kind's pure policy, one decision per module (scheduling, failure, retry, status, ...)."""
