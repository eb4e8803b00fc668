"""Progressive rollouts: a canary release stepped up by automated canary analysis, promoted or aborted.

- :mod:`.stats`: anytime-valid (mSPRT) p-values for rates, Mann–Whitney shifts, means and AUCs;
- :mod:`.checks`: the checks of a step (canary arm vs stable arm on one window) and the step's verdict;
- :mod:`.samples`: the arms read incrementally from every replica's request log and the feedback log;
- :mod:`.replicas`: which gateway replicas do not answer (a rollout pauses, never aborts, on them);
- :mod:`.state`: the rollout's phases and state, as stored in the registry (:mod:`llmops.registry.rollouts`);
- :mod:`.controller`: the loop that writes weights, looks, and promotes or aborts (crash-safe, one per route);
- :mod:`.service`: ``start``, ``resume``, ``abort``, ``status`` (the CLI's ``llmops rollout``);
- :mod:`.metrics`: the controller's Prometheus gauges.
"""
