# llmops trainer image: fine-tuning, the monitor and rollouts (llmops[train,monitor]); runs `llmops finetune run` by default
# Built by `make images` (deploy/scripts/build-images.sh) with the legacy builder and no network: the context is
# build/images/trainer/ (wheels/ = build/wheels/trainer + build/wheels/llmops, entrypoint.py). Keys come only from the
# environment at run time; none is baked in.
ARG BASE_IMAGE=llmops/base:bookworm

FROM ${BASE_IMAGE} AS install
# torchvision/torchaudio/torchcodec (pulled in by vLLM): PyPI's builds break torch's CPU build; removed as `make` does
COPY wheels /wheels
RUN python3 -m venv /opt/llmops \
 && /opt/llmops/bin/pip install --no-index --find-links /wheels --no-cache-dir --disable-pip-version-check -q \
      'llmops[train,monitor]' \
 && (/opt/llmops/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true) \
 && /opt/llmops/bin/pip uninstall -y -q pip

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="llmops-trainer" org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="deploy/docker/trainer.Dockerfile"
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
    HF_HOME=/var/lib/llmops/cache/huggingface \
    HF_HUB_OFFLINE=1
WORKDIR /etc/llmops
USER 10001:10001
# a batch job (fine-tuning, the monitor CronJob, a rollout Job): no port, so no health URL to probe
HEALTHCHECK NONE
ENTRYPOINT ["llmops-entrypoint", "trainer"]
CMD ["llmops", "finetune", "run"]
