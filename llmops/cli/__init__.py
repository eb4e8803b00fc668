"""The ``llmops`` command line (typer + rich)."""
