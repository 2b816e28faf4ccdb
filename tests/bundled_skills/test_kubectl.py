"""The bundled kubectl skill against a fake Kubernetes API server on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import (
    call_skill,
    check_folder,
    failure,
    load,
    refusal,
    run_skill,
    skill_gateway,
)
from fakes_ops_kube import FakeKubeApi

from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as fake:
        yield fake


def grant(api: FakeKubeApi, token: str | None = None) -> dict[str, str]:
    return {"KUBE_API_URL": api.url, "KUBE_TOKEN": token or api.token}


async def kube(api: FakeKubeApi, ws: Path, payload: dict[str, Any], **kw: Any) -> RunResult:
    return await run_skill("kubectl", payload, ws, grant(api), **kw)


async def test_get_pods(api: FakeKubeApi, workspace: Path, level: IsolationLevel) -> None:
    r = await kube(
        api, workspace, {"action": "get", "kind": "pods", "namespace": "shop"}, level=level
    )
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data is not None and r.data["count"] == 2
    web, worker = r.data["items"]
    assert (
        web["name"] == "web-7d4b9c-abcde" and web["ready"] == "1/1" and web["status"] == "Running"
    )
    assert worker["status"] == "CrashLoopBackOff" and worker["restarts"] == 14
    assert worker["ready"] == "0/1" and worker["node"] == "node-2"
    method, path, headers = api.requests[-1]
    assert (method, path) == ("GET", "/api/v1/namespaces/shop/pods?limit=100")
    assert headers["Authorization"] == f"Bearer {api.token}"


async def test_get_other_kinds(api: FakeKubeApi, workspace: Path) -> None:
    r = await kube(api, workspace, {"action": "get", "kind": "deploy", "namespace": "shop"})
    assert r.data is not None
    assert r.data["items"][0] | {"age": None} == {
        "name": "web",
        "namespace": "shop",
        "ready": "2/2",
        "up_to_date": 2,
        "available": 2,
        "age": None,
        "images": ["nginx:1.27"],
    }
    assert api.requests[-1][1].startswith("/apis/apps/v1/namespaces/shop/deployments")
    r = await kube(api, workspace, {"action": "get", "kind": "svc", "namespace": "shop"})
    assert r.data is not None and r.data["items"][0]["ports"] == ["80/TCP"]
    assert r.data["items"][0]["cluster_ip"] == "10.96.0.10"
    r = await kube(api, workspace, {"action": "get", "kind": "nodes"})
    assert r.data is not None
    assert (
        r.data["items"][0]["roles"] == ["control-plane"] and r.data["items"][0]["status"] == "Ready"
    )
    assert api.requests[-1][1] == "/api/v1/nodes?limit=100"
    r = await kube(api, workspace, {"action": "get", "kind": "events", "namespace": "shop"})
    assert r.data is not None and r.data["items"][0]["object"] == "pod/worker-5f6d8-xyz12"
    r = await kube(api, workspace, {"action": "get", "kind": "pods", "all_namespaces": True})
    assert (
        r.data is not None
        and r.data["count"] == 2
        and api.requests[-1][1].startswith("/api/v1/pods")
    )
    payload = {"action": "get", "kind": "pods", "namespace": "shop", "label_selector": "app=web"}
    r = await kube(api, workspace, payload)
    assert r.data is not None and [i["name"] for i in r.data["items"]] == ["web-7d4b9c-abcde"]
    payload = {"action": "get", "kind": "pod", "namespace": "shop", "name": "web-7d4b9c-abcde"}
    r = await kube(api, workspace, payload)
    assert r.data is not None and r.data["items"][0]["ip"] == "10.1.0.5"


async def test_describe_pod_with_events(api: FakeKubeApi, workspace: Path) -> None:
    payload = {
        "action": "describe",
        "kind": "pods",
        "namespace": "shop",
        "name": "worker-5f6d8-xyz12",
    }
    r = await kube(api, workspace, payload)
    assert r.ok and r.data is not None
    assert r.data["summary"]["status"] == "CrashLoopBackOff"
    assert r.data["containers"][0]["last_state"] == {
        "terminated": {"exitCode": 1, "reason": "Error"}
    }
    assert r.data["events"][0]["reason"] == "BackOff"
    assert r.data["conditions"] == [{"type": "Ready", "status": "False"}]
    assert "fieldSelector=involvedObject.name%3Dworker-5f6d8-xyz12" in api.requests[-1][1]


async def test_pod_logs_tail(api: FakeKubeApi, workspace: Path) -> None:
    payload = {"action": "logs", "namespace": "shop", "name": "web-7d4b9c-abcde", "tail": 3}
    r = await kube(api, workspace, payload)
    assert r.ok and r.data is not None
    assert r.data["lines"] == [f"10.0.0.{i} GET /health 200" for i in (298, 299, 300)]
    assert "tailLines=3" in api.requests[-1][1] and "limitBytes=262144" in api.requests[-1][1]


async def test_rollout_restart_sends_kubectls_patch(api: FakeKubeApi, workspace: Path) -> None:
    r = await kube(
        api, workspace, {"action": "rollout-restart", "namespace": "shop", "name": "web"}
    )
    assert r.ok and r.data is not None
    assert r.data["deployment"] == "web" and r.data["generation"] == 4
    path, content_type, body = api.patches[0]
    assert path.startswith("/apis/apps/v1/namespaces/shop/deployments/web?")
    assert content_type == "application/strategic-merge-patch+json"
    stamp = body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60
    assert stamp == r.data["restarted_at"]


async def test_paused_deployment_is_not_restarted(api: FakeKubeApi, workspace: Path) -> None:
    api.objects["deployments"][0]["spec"]["paused"] = True
    r = await kube(
        api, workspace, {"action": "rollout-restart", "namespace": "shop", "name": "web"}
    )
    assert "is paused" in refusal(r)
    assert api.patches == []


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "get", "kind": "pods", "namespace": "-A"}, "starts with '-'"),
        (
            {"action": "get", "kind": "pods", "namespace": "shop", "name": "--raw"},
            "starts with '-'",
        ),
        ({"action": "logs", "namespace": "shop", "name": "../../secrets"}, "not a valid name"),
        (
            {"action": "logs", "namespace": "shop", "name": "web", "container": "-c"},
            "starts with '-'",
        ),
        ({"action": "get", "kind": "secrets"}, "'kind' must be one of"),
        ({"action": "get", "kind": "pods", "limit": 10_000}, "between 1 and 500"),
        ({"action": "describe", "kind": "events", "name": "x"}, "describe works on"),
        ({"action": "rollout-restart", "namespace": "Shop", "name": "web"}, "not a valid name"),
    ],
)
async def test_bad_input_is_refused(
    api: FakeKubeApi, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    r = await kube(api, workspace, payload)
    assert why in refusal(r)
    assert api.patches == []


async def test_api_errors_are_clear(api: FakeKubeApi, workspace: Path) -> None:
    payload = {"action": "describe", "kind": "pods", "namespace": "shop", "name": "gone"}
    r = await kube(api, workspace, payload)
    assert 'kubernetes: pods "gone" not found (HTTP 404)' in failure(r)
    bad = {"KUBE_API_URL": api.url, "KUBE_TOKEN": "wrong"}
    r = await run_skill(
        "kubectl", {"action": "get", "kind": "nodes"}, workspace=workspace, secrets=bad
    )
    assert "KUBE_TOKEN was not accepted" in failure(r)
    down = {"KUBE_API_URL": "http://127.0.0.1:9", "KUBE_TOKEN": "x"}
    r = await run_skill(
        "kubectl", {"action": "get", "kind": "nodes"}, workspace=workspace, secrets=down
    )
    assert "cannot connect to 127.0.0.1:9" in failure(r)
    odd = {"KUBE_API_URL": "file:///etc/kubernetes", "KUBE_TOKEN": "x"}
    r = await run_skill(
        "kubectl", {"action": "get", "kind": "nodes"}, workspace=workspace, secrets=odd
    )
    assert "KUBE_API_URL must be an https://" in refusal(r)


def test_skill_folder() -> None:
    skill = check_folder("kubectl", {"KUBE_API_URL": "https://k8s:6443", "KUBE_TOKEN": "t"})
    effects = skill.declared_effects
    assert effects is not None
    restart = effects.for_input({"action": "rollout-restart", "name": "web"})
    assert restart.confirm and restart.writes
    get = effects.for_input({"action": "get", "kind": "pods"})
    assert not (get.confirm or get.writes or get.egress or get.untrusted_output)
    assert effects.for_input({"action": "get", "kind": "events"}).untrusted_output
    assert effects.for_input({"action": "logs", "name": "p"}).untrusted_output


def test_needs_both_settings() -> None:
    skill = load("kubectl", {"KUBE_API_URL": "https://k8s:6443"})
    assert not skill.available and "KUBE_TOKEN" in (skill.reason or "")


# -- through the gateway ----------------------------------------------------------------


async def test_get_pods_through_the_gateway(api: FakeKubeApi, home: Path) -> None:
    async with skill_gateway(home, {"kubectl": grant(api)}) as gw:
        payload = {"action": "get", "kind": "pods", "namespace": "shop"}
        reply, tool, card = await call_skill(gw, "kubectl", payload)
    assert card is None
    assert "CrashLoopBackOff" in tool and "worker-5f6d8-xyz12" in tool
    assert "CrashLoopBackOff" in reply["reply"]


@pytest.mark.parametrize("approve", [True, False], ids=["confirmed", "declined"])
async def test_rollout_restart_waits_for_the_user(
    api: FakeKubeApi, home: Path, approve: bool
) -> None:
    async with skill_gateway(home, {"kubectl": grant(api)}) as gw:
        payload = {"action": "rollout-restart", "namespace": "shop", "name": "web"}
        _, tool, card = await call_skill(gw, "kubectl", payload, approve=approve)
    assert card is not None and "rollout-restart" in card["detail"]
    if approve:
        assert len(api.patches) == 1 and '"generation": 4' in tool
    else:
        assert api.patches == [] and "declined" in tool
        assert not [r for r in api.requests if r[0] != "GET"]
