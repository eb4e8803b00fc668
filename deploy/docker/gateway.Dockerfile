# llmops gateway image: the OpenAI-compatible gateway (llmops[gateway]) on port 8080; config at /etc/llmops/gateway.yaml
# Built by `make images` (deploy/scripts/build-images.sh) with the legacy builder and no network: the context is
# build/images/gateway/ (wheels/ = build/wheels/gateway + build/wheels/llmops, entrypoint.py). Keys come only from the
# environment at run time; none is baked in.
ARG BASE_IMAGE=llmops/base:bookworm

FROM ${BASE_IMAGE} AS install
COPY wheels /wheels
RUN python3 -m venv /opt/llmops \
 && /opt/llmops/bin/pip install --no-index --find-links /wheels --no-cache-dir --disable-pip-version-check -q \
      'llmops[gateway]' \
 && (/opt/llmops/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true) \
 && /opt/llmops/bin/pip uninstall -y -q pip

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="llmops-gateway" org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="deploy/docker/gateway.Dockerfile"
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
    DO_NOT_TRACK=1
WORKDIR /etc/llmops
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["llmops-entrypoint", "gateway"]
CMD ["llmops", "serve", "gateway", "--config", "/etc/llmops/gateway.yaml", "--host", "0.0.0.0", "--port", "8080", "--log-level", "info"]
