"""LoRA fine-tuning: validated datasets, a PEFT recipe, lineage in MLflow, local runs and Ray launch.

One concept per module, in the order a job flows through them:

``job``          the job spec ``finetune/NAME.yaml`` (pydantic, file/line/field errors)
``rows``         JSONL rows (chat or prompt rows), schema errors with line numbers, fingerprint
``dataset``      rows → messages (through a registered prompt version) → tokens, assistant-only labels
``validation``   data warnings: empty, over-long, duplicates, train/eval overlap, PII
``collate``      padding-free packing where the model supports it, padding otherwise
``checkpoints``  complete-or-ignored checkpoints (marker written last)
``callbacks``    SIGTERM → checkpoint + stop; progress (a reporter task); per-step metrics
``recipe``       the training recipe (transformers Trainer + PEFT), read top to bottom
``lineage``      the tracked run (``registry.runs``) and the adapter version's lineage tags
``state``        a job's folder: checkpoints, state.json, lock; what --resume may continue
``runner``       checks → run → train → register, with resume (``run_job``)
``launch``       the Launcher protocol and the local launcher
``ray_launcher`` Ray Jobs API submission (entrypoint ``python -m llmops finetune run``)
``scoring``      greedy exact match (did the fine-tune learn?)
``example_data`` the worked example's data

The base model is resolved by :mod:`llmops.models.base`; the registry is reached only through the
:mod:`llmops.registry` façade; progress goes to an :class:`llmops.events.Reporter` (nothing prints).
"""
