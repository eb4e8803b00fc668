# llmops engine-cpu image: vLLM's CPU build (llmops[engine-cpu]) serving the model at $LLMOPS_MODEL on port 8000
# Built by `make images` (deploy/scripts/build-images.sh) with the legacy builder and no network: the context is
# build/images/engine-cpu/ (wheels/ = build/wheels/engine-cpu + build/wheels/llmops, entrypoint.py). Keys come only from the
# environment at run time; none is baked in.
ARG BASE_IMAGE=llmops/base:bookworm

FROM ${BASE_IMAGE} AS install
# torchvision/torchaudio/torchcodec (pulled in by vLLM): PyPI's builds break torch's CPU build; removed as `make` does
COPY wheels /wheels
RUN python3 -m venv /opt/llmops \
 && /opt/llmops/bin/pip install --no-index --find-links /wheels --no-cache-dir --disable-pip-version-check -q \
      'llmops[engine-cpu]' \
 && (/opt/llmops/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true) \
 && /opt/llmops/bin/pip uninstall -y -q pip

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="llmops-engine-cpu" org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="deploy/docker/engine-cpu.Dockerfile"
RUN groupadd --gid 10001 llmops \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/llmops --no-create-home --shell /usr/sbin/nologin llmops \
 && mkdir -p /var/lib/llmops /etc/llmops && chown llmops:llmops /var/lib/llmops
COPY --from=install /opt/llmops /opt/llmops
COPY entrypoint.py /usr/local/bin/llmops-entrypoint
RUN sed -i '1i #!/opt/llmops/bin/python' /usr/local/bin/llmops-entrypoint && chmod 0755 /usr/local/bin/llmops-entrypoint
ENV PATH=/opt/llmops/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/llmops \
    LLMOPS_HOME=/var/lib/llmops \
    LLMOPS_WORKSPACE=/etc/llmops \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    LLMOPS_MODEL=reference \
    LLMOPS_KV_CACHE_GIB=1 \
    HF_HOME=/var/lib/llmops/cache/huggingface \
    VLLM_CACHE_ROOT=/var/lib/llmops/cache/vllm \
    VLLM_NO_USAGE_STATS=1 \
    HF_HUB_OFFLINE=1
WORKDIR /etc/llmops
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["llmops-entrypoint", "engine-cpu"]
CMD ["sh", "-c", "exec llmops serve engine --host 0.0.0.0 --port 8000 --name engine --model \"$LLMOPS_MODEL\" --kv-cache-gib \"$LLMOPS_KV_CACHE_GIB\""]
