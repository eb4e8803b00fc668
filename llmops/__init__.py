"""llmops: lifecycle manager for prompts and LoRA fine-tunes."""

__version__ = "0.1.0"
