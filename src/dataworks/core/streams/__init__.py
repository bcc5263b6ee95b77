"""Pure policy of streams: the generator's rate shapes and its seeded message stream."""
