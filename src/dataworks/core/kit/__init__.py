"""What two or more kinds share in the pure layer: clock, conditions, Job reading, names, DAGs."""
