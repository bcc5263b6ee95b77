"""Pure policy of StreamingJobs: how far behind a consumer group is, and how many consumers it needs."""
