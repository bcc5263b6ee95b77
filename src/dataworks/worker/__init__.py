"""The step runtime (edge layer): runs one step, or one fan-out worker, in a pod or a local process."""
