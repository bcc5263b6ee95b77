"""The built-in step types (edge layer): one module per type, each with `run(ctx)`."""
