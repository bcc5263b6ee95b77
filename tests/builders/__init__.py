"""Shared test builders, used by every tier (unit, cluster, local): fluent resources and simulators."""
