"""Operator observability (edge layer): Prometheus metrics and the health/readiness/metrics HTTP server."""
