"""Prompts as code: YAML specs in git, versions in the MLflow Prompt Registry."""
