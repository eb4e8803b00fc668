"""The OpenAI-compatible gateway: routes, sticky weighted canaries, prompt rendering, adapter sync.

``build_app(settings, resolver)`` (:mod:`llmops.gateway.app`) returns a pure-ASGI application that
``llmops serve gateway`` runs under uvicorn. One concept per module:

========================  ===========================================================
``config``                the schema of ``serving/gateway.yaml`` and the settings built from it
``routing``               pure functions: sticky key → point in [0, 1) → weighted target
``resolver``              where releases come from: the MLflow registry, or a static table
``prompting``             prompt versions compiled once, rendered per request in the sandbox
``routes``                the resolved route table, its atomic swap and background refresher
``table``                 the table's immutable values: served targets, routes, the table itself
``statesync``             route state (registry weights, stage pointers) read every second by each replica
``adapters``              adapter versions loaded into engines by name, least recently routed unloaded
``upstream``              one pooled HTTP client per engine, behind a Protocol
``chatrequest``           request checks (allow-list) and the engine's request body
``chat``                  the hot path: ``POST /v1/chat/completions``
``streaming``             server-sent events relayed event by event
``shadow``                copies of requests to a shadow release, logged only
``auth`` / ``limits``     API keys (sha256) and scopes; body, token, ``n`` and deadline limits
``errors``                the exception tree mapped to HTTP and OpenAI error bodies
``requestlog``            one JSONL record per request, written off the hot path
``metrics``               Prometheus metrics in a registry per app
``admin``                 models, health, readiness, metrics and admin endpoints (FastAPI)
``asgi``                  ASGI type aliases
========================  ===========================================================
"""
