"""LoRA fine-tuning: validated datasets, a PEFT recipe, lineage in MLflow, local runs and Ray launch.

One concept per module, in the order a job flows through them:

``job``          the job spec ``finetune/NAME.yaml`` (pydantic, file/line/field errors)
``rows``         JSONL rows (chat or prompt rows), schema errors with line numbers, fingerprint
``dataset``      rows → messages (through a registered prompt version) → tokens, assistant-only labels
``validation``   data warnings: empty, over-long, duplicates, train/eval overlap, PII
``base_model``   the base model's local folder and content hash (no downloads)
``collate``      padding-free packing where the model supports it, padding otherwise
``checkpoints``  complete-or-ignored checkpoints (marker written last)
``callbacks``    SIGTERM → checkpoint + stop; progress bar; per-step metrics
``recipe``       the training recipe (transformers Trainer + PEFT), read top to bottom
``lineage``      the MLflow run and the registered adapter version's lineage tags
``state``        a job's folder: checkpoints, state.json, lock; what --resume may continue
``runner``       checks → run → train → register, with resume
``launch``       the Launcher protocol and the local launcher
``ray_launcher`` Ray Jobs API submission
``scoring``      greedy exact match (did the fine-tune learn?)
``example_data`` the worked example's data
"""
