"""Governance: answer for any response which data, releases, evals and people it came from.

``lineage``   a release → its prompt and adapter versions, training run, datasets, eval records
``trace``     a request id → its log record, the release serving it then, the records that allowed it
``report``    a route's model card and EU AI Act Annex IV technical documentation
``retention`` how long request logs, feedback and audit records are kept; ``llmops logs prune``
"""
