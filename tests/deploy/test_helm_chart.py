"""deploy/helm/nexflow: rendered offline with helm-python-sdk (Helm's Go SDK behind a C ABI,
no helm binary, no cluster) for the default values, values-scaled.yaml and a bundled
Postgres/Redis, and every manifest validated with kubernetes-validate against one fixed
Kubernetes version in strict mode (unknown fields are errors)."""

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from nexflow.config import load_config

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "nexflow"
KUBE_VERSION = "1.30.0"
RELEASE = "nexflow"
NAMESPACE = "nexflow"

BUNDLED = {
    "postgresql": {"bundled": True},
    "redis": {"bundled": True},
    "secret": {"create": True, "gatewayToken": "t0ken", "postgresPassword": "pw-123"},
    "ingress": {"enabled": True, "className": "nginx"},
}


def scaled_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values-scaled.yaml").read_text())
    return values


SCENARIOS: dict[str, Any] = {"default": {}, "scaled": scaled_values, "bundled": BUNDLED}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders for ``values``, as install would send them."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.fixture(scope="module", params=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest, chart: helm.Chart) -> tuple[str, list[dict[str, Any]]]:
    values = SCENARIOS[request.param]
    values = values() if callable(values) else values
    return request.param, render(chart, copy.deepcopy(values))


def one(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def kinds(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["labels"]["app.kubernetes.io/component"]) for d in docs}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def mounts_of(pod_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume mounted there."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    (container,) = pod_spec["containers"]
    return {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


# --- every scenario ---------------------------------------------------------------------------


def test_lint_strict(chart: helm.Chart) -> None:
    for values in ({}, scaled_values(), BUNDLED):
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_validates_strictly(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = scenario
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_gateway_probes_and_security(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = scenario
    pod = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["nexflow", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    # the gateway answers loopback Host names; the kubelet would send the pod IP
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["httpHeaders"] == [
            {"name": "Host", "value": "localhost"}
        ]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = mounts_of(pod)
    assert {"/data", "/tmp", "/etc/nexflow", "/workspaces"} <= set(mounts)


def test_pdb_selects_the_gateway_pods(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = scenario
    pdb = one(docs, "PodDisruptionBudget", "gateway")
    deployment = one(docs, "Deployment", "gateway")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(pdb["spec"]["selector"], pod_labels)
    worker = one(docs, "StatefulSet", "worker")
    assert not selects(pdb["spec"]["selector"], worker["spec"]["template"]["metadata"]["labels"])
    service = one(docs, "Service", "gateway")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels)


def test_worker_is_a_statefulset_with_its_pod_name_as_executor_id(
    scenario: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = scenario
    worker = one(docs, "StatefulSet", "worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["nexflow", "worker"]
    port = int(container["command"][container["command"].index("--health-port") + 1])
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["health"] == port
    assert env_of(container)["NEXFLOW_FLOWS__RUN_ON"]["value"] == "workers"
    executor = env_of(container)["NEXFLOW_FLOWS__EXECUTOR_ID"]
    assert executor["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    governing = [
        d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"] == worker["spec"]["serviceName"]
    ]
    assert len(governing) == 1 and governing[0]["spec"]["clusterIP"] == "None"


def test_workspaces_volume_is_shared_read_write_many(
    scenario: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = scenario
    (pvc,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for kind, component in (("Deployment", "gateway"), ("StatefulSet", "worker")):
        pod = one(docs, kind, component)["spec"]["template"]["spec"]
        claim = mounts_of(pod)["/workspaces"]["persistentVolumeClaim"]["claimName"]
        assert claim == pvc["metadata"]["name"]
        env = env_of(pod["containers"][0])
        assert env["NEXFLOW_WORKSPACES__ROOT"]["value"] == "/workspaces"
        assert env["NEXFLOW_HOME"]["value"] == "/data"


def test_network_policies(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = scenario
    gateway = one(docs, "NetworkPolicy", "gateway")["spec"]
    assert gateway["policyTypes"] == ["Ingress"]
    (rule,) = gateway["ingress"]
    peers = rule["from"]
    assert {"podSelector": {"matchLabels": {"nexflow-client": "true"}}} in peers
    assert any("namespaceSelector" in p for p in peers), "the ingress controller"
    worker = one(docs, "NetworkPolicy", "worker")["spec"]
    assert worker["policyTypes"] == ["Ingress"] and worker["ingress"] == []


def test_config_map_is_a_valid_nexflow_config(
    scenario: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, docs = scenario
    config_map = one(docs, "ConfigMap", "config")
    path = tmp_path / "config.yml"
    path.write_text(config_map["data"]["config.yml"])
    config = load_config(path, {"NEXFLOW_HOME": str(tmp_path)})
    assert config.web.host == "0.0.0.0" and config.web.port == 8080
    assert "nexflow-gateway.nexflow.svc" in config.web.public_hosts


# --- what differs between scenarios -------------------------------------------------------------


def test_default_values(chart: helm.Chart) -> None:
    docs = render(chart, {})
    assert one(docs, "Deployment", "gateway")["spec"]["replicas"] == 2
    assert one(docs, "StatefulSet", "worker")["spec"]["replicas"] == 1
    present = kinds(docs)
    assert ("HorizontalPodAutoscaler", "gateway") not in present
    assert ("StatefulSet", "postgresql") not in present and ("StatefulSet", "redis") not in present
    assert not any(d["kind"] in ("Secret", "Ingress") for d in docs)
    env = env_of(one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0])
    # external services: URLs from the Secret, storage and token required, Redis optional
    storage = env["NEXFLOW_STORAGE__URL"]["valueFrom"]["secretKeyRef"]
    assert storage == {"name": "nexflow", "key": "NEXFLOW_STORAGE__URL"}
    assert (
        env["NEXFLOW_GATEWAY_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "NEXFLOW_GATEWAY_TOKEN"
    )
    assert env["NEXFLOW_REDIS__URL"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_scaled_values(chart: helm.Chart) -> None:
    values = scaled_values()
    docs = render(chart, values)
    deployment = one(docs, "Deployment", "gateway")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = one(docs, "HorizontalPodAutoscaler", "gateway")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (4, 10)
    assert one(docs, "StatefulSet", "worker")["spec"]["replicas"] == values["worker"]["replicas"]
    assert one(docs, "PodDisruptionBudget", "gateway")["spec"]["minAvailable"] == 2
    ingress = one(docs, "Ingress", "gateway")["spec"]
    assert ingress["rules"][0]["host"] == "nexflow.example.com"
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == deployment["metadata"]["name"]


def test_replica_counts_follow_values(chart: helm.Chart) -> None:
    docs = render(chart, {"gateway": {"replicas": 5}, "worker": {"replicas": 4}})
    assert one(docs, "Deployment", "gateway")["spec"]["replicas"] == 5
    assert one(docs, "StatefulSet", "worker")["spec"]["replicas"] == 4


def test_bundled_postgres_and_redis(chart: helm.Chart) -> None:
    docs = render(chart, copy.deepcopy(BUNDLED))
    postgres = one(docs, "StatefulSet", "postgresql")
    redis = one(docs, "StatefulSet", "redis")
    assert postgres["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "pgvector/pgvector:pg15"
    )
    assert redis["spec"]["template"]["spec"]["containers"][0]["image"].startswith("redis:7")
    for component, port in (("postgresql", 5432), ("redis", 6379)):
        policy = one(docs, "NetworkPolicy", component)["spec"]
        (rule,) = policy["ingress"]
        (peer,) = rule["from"]
        match = {e["key"]: e["values"] for e in peer["podSelector"]["matchExpressions"]}
        assert match["app.kubernetes.io/component"] == ["gateway", "worker"]
        assert match["app.kubernetes.io/instance"] == [RELEASE]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    secret = one(docs, "Secret", "config")
    assert secret["stringData"]["POSTGRES_PASSWORD"] == "pw-123"
    env = env_of(one(docs, "StatefulSet", "worker")["spec"]["template"]["spec"]["containers"][0])
    assert env["NEXFLOW_STORAGE__URL"]["value"] == (
        "postgresql://nexflow:$(NEXFLOW_POSTGRES_PASSWORD)@nexflow-postgresql:5432/nexflow"
    )
    assert env["NEXFLOW_REDIS__URL"]["value"] == "redis://nexflow-redis:6379/0"
    # $(VAR) expands only variables defined earlier in the list
    names = list(env)
    assert names.index("NEXFLOW_POSTGRES_PASSWORD") < names.index("NEXFLOW_STORAGE__URL")
    assert names.index("NEXFLOW_STORAGE__URL") < names.index("NEXFLOW_FLOWS__DATABASE_URL")


# --- broken values and manifests are rejected -------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gateway": {"replicas": "two"}}, "/gateway/replicas"),
        ({"gateway": {"replicas": 0}}, "/gateway/replicas"),
        ({"workspaces": {"persistence": {"accessMode": "ReadManyWriteNone"}}}, "accessMode"),
        ({"postgresql": {"bundled": "yes"}}, "/postgresql/bundled"),
        ({"replicaCount": 3}, "replicaCount"),
    ],
)
def test_schema_rejects_broken_values(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=message):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


def test_chart_made_secret_needs_its_keys(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secret\.gatewayToken is required"):
        render(chart, {"secret": {"create": True}})
    with pytest.raises(helm.HelmRenderError, match=r"secret\.storageUrl is required"):
        render(chart, {"secret": {"create": True, "gatewayToken": "t"}})


def test_strict_validation_rejects_a_broken_manifest(chart: helm.Chart) -> None:
    deployment = copy.deepcopy(one(render(chart, {}), "Deployment", "gateway"))
    deployment["spec"]["replica"] = 2  # a typo: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    deployment = copy.deepcopy(one(render(chart, {}), "Deployment", "gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = (
        "5s"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
