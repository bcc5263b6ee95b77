"""Defaults that several layers need, spelled once (pure layer, no imports: the worker loads it).

The operator's configuration (api.config) starts from these, the planner and
the worker fall back on them.
"""

DEFAULT_MAX_PARALLELISM = 1000  # the largest fan-out a pipeline may ask for
DEFAULT_ARTIFACT_STORE = "file:///var/lib/dataworks/store"  # where built-in steps keep outputs
