"""Inference engines llmops launches (vLLM's OpenAI server); see :mod:`llmops.engine.vllm_server`."""

from llmops.engine.vllm_server import EngineSettings, engine_argv, engine_env, start_engine

__all__ = ["EngineSettings", "engine_argv", "engine_env", "start_engine"]
