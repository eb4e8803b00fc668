"""Typed configuration at the edge: YAML files turned into pydantic models."""
