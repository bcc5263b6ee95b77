"""The kopf operator (I/O layer): observes Pipelines and Jobs, applies core plans."""
