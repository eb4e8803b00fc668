"""LoRA adapters: versions in the MLflow Model Registry, with a sha256 manifest and lineage tags."""
