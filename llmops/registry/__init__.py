"""The MLflow registry: connection, server, and the objects llmops keeps there."""
