# llmops registry image: the MLflow tracking/registry server (llmops[registry]: mlflow + psycopg) on port 5000, on PostgreSQL
# Built by `make images` (deploy/scripts/build-images.sh) with the legacy builder and no network: the context is
# build/images/registry/ (wheels/ = build/wheels/registry + build/wheels/llmops, entrypoint.py). Keys come only from the
# environment at run time; none is baked in.
ARG BASE_IMAGE=llmops/base:bookworm

FROM ${BASE_IMAGE} AS install
COPY wheels /wheels
RUN python3 -m venv /opt/llmops \
 && /opt/llmops/bin/pip install --no-index --find-links /wheels --no-cache-dir --disable-pip-version-check -q \
      'llmops[registry]' \
 && (/opt/llmops/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true) \
 && /opt/llmops/bin/pip uninstall -y -q pip

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="llmops-registry" org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="deploy/docker/registry.Dockerfile"
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
    MLFLOW_ARTIFACTS_DESTINATION=/var/lib/llmops/mlartifacts
WORKDIR /etc/llmops
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)", "http://localhost:5000/health"]
ENTRYPOINT ["llmops-entrypoint", "registry"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--serve-artifacts", "--workers", "2"]
