"""The local executor (edge layer): a pipeline on one machine, planned by the same core as the operator."""
