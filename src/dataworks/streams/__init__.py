"""Streams at the edge: where generated lines go (Redis Streams, a JSON-lines file)."""
