"""Regenerate the example fine-tuning data next to this file (deterministic: same bytes every run).

Usage: python finetune/data/generate.py
"""

from __future__ import annotations

from pathlib import Path

from llmops.finetune.example_data import write_all

if __name__ == "__main__":
    for path in write_all(Path(__file__).resolve().parent):
        print(path)
