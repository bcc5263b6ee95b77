"""The local executor (edge layer): runs a pipeline on one machine with the same core planning as the operator."""
