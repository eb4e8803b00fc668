"""Production monitoring: live traffic of each route compared with its release's reference.

``llmops monitor run`` reads the gateway's request and feedback logs (:mod:`llmops.gateway.logreader`),
cuts them into windows, evaluates the signals of ``serving/monitor.yaml`` (:mod:`llmops.config.monitor`)
and reports each as a :class:`~llmops.monitor.levels.SignalResult`; alert rules held long enough become
triggers whose actions run (a webhook, ``llmops retrain``).
"""
