"""Eval suites: score a release on quality, latency and bias; gate promotion on the verdict."""
