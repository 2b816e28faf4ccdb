"""docker-compose.yml: valid against the Compose Specification's JSON schema (vendored in
data/, see data/README.md), and consistent in what the schema cannot see: references
between services, volumes and networks, the proxy's upstreams, the documented variables."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from nexflow.config import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / "compose" / ".env.example"
NGINX_CONF = REPO / "deploy" / "compose" / "nginx.conf"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

GATEWAYS = ("gateway-1", "gateway-2")
NEXFLOW_SERVICES = (*GATEWAYS, "worker")

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; $$ escapes.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, enough for this file (no nesting)."""

    def replace(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["bare"]
        op, arg = m["op"] or "", m["arg"] or ""
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise ValueError(f"required variable {name} is unset: {arg}")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def variables_used(text: str) -> set[str]:
    return {m["braced"] or m["bare"] for m in _VARIABLE.finditer(text) if not m["escaped"]}


def documented_variables() -> dict[str, str]:
    """Every VAR=value line of .env.example, commented out (optional) or not."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            found[m[1]] = m[2]
    return found


def example_env() -> dict[str, str]:
    """.env.example with its required blanks filled: what `docker compose config` would see."""
    env = {k: v for k, v in documented_variables().items() if v}
    env.update(POSTGRES_PASSWORD="example-password", NEXFLOW_GATEWAY_TOKEN="example-token")
    return env


def load_compose(text: str | None = None) -> dict[str, Any]:
    raw = COMPOSE.read_text() if text is None else text
    loaded: dict[str, Any] = yaml.safe_load(interpolate(raw, example_env()))
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture
def compose() -> dict[str, Any]:
    return load_compose()


def schema_errors(validator: jsonschema.protocols.Validator, doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def _named_volume(entry: str | dict[str, Any]) -> str | None:
    source = entry.split(":", 1)[0] if isinstance(entry, str) else entry.get("source", "")
    kind = "volume" if isinstance(entry, str) else entry.get("type", "volume")
    if kind != "volume" or not source or source.startswith((".", "/", "~")):
        return None
    return str(source)


def upstream_servers(conf: str) -> list[tuple[str, int]]:
    servers = []
    for block in re.findall(r"upstream\s+\S+\s*\{(.*?)\}", conf, re.S):
        for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", block, re.M):
            servers.append((host, int(port)))
    return servers


def service_problems(doc: dict[str, Any]) -> list[str]:
    """Dangling references between services, volumes and networks, and missing bind sources."""
    problems: list[str] = []
    services: dict[str, Any] = doc.get("services", {})
    volumes = set(doc.get("volumes") or {})
    networks = set(doc.get("networks") or {}) | {"default"}
    for name, service in services.items():
        for dep, spec in _depends_on(service).items():
            if dep not in services:
                problems.append(f"{name}: depends_on names unknown service {dep!r}")
            elif spec.get("condition") == "service_healthy" and not _has_healthcheck(services[dep]):
                problems.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
        for entry in service.get("volumes") or []:
            volume = _named_volume(entry)
            if volume is not None and volume not in volumes:
                problems.append(f"{name}: volume {volume!r} is not declared under volumes:")
            source = entry.split(":", 1)[0] if isinstance(entry, str) else entry.get("source")
            if isinstance(source, str) and source.startswith(".") and not (REPO / source).exists():
                problems.append(f"{name}: bind-mounted {source} does not exist in the repository")
        # a list of names or a mapping keyed by them
        for network in service.get("networks") or []:
            if network not in networks:
                problems.append(f"{name}: network {network!r} is not declared under networks:")
    return problems


def semantic_problems(doc: dict[str, Any], nginx_conf: str, compose_text: str) -> list[str]:
    """What the schema cannot check; an empty list when the file is consistent."""
    problems = service_problems(doc)
    services: dict[str, Any] = doc.get("services", {})
    servers = upstream_servers(nginx_conf)
    if not servers:
        problems.append("nginx.conf: no upstream servers")
    for host, port in servers:
        if host not in services:
            problems.append(f"nginx.conf: upstream {host}:{port} is not a service")
        elif f"--port {port}" not in " ".join(map(str, services[host].get("command") or [])):
            problems.append(f"nginx.conf: {host} does not listen on {port}")
    undocumented = variables_used(compose_text) - set(documented_variables())
    problems.extend(f"${{{v}}} is not documented in .env.example" for v in sorted(undocumented))
    return problems


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable")


# --- the committed file ----------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    assert schema_errors(validator, compose) == []


def test_compose_file_is_consistent(compose: dict[str, Any]) -> None:
    assert semantic_problems(compose, NGINX_CONF.read_text(), COMPOSE.read_text()) == []


def test_gateways_worker_and_their_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in GATEWAYS:
        assert services[name]["command"] == [
            "nexflow",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "8080",
        ]
    assert services["worker"]["command"][:2] == ["nexflow", "worker"]
    assert {"proxy", "postgres", "redis", "ollama"} <= set(services)
    assert services["ollama"]["profiles"] == ["ollama"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:pg15")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["proxy"]["image"].startswith("nginx:")


def test_replicas_share_storage_and_workspaces_but_not_their_home(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = {name: services[name]["environment"] for name in NEXFLOW_SERVICES}
    urls = {e["NEXFLOW_STORAGE__URL"] for e in env.values()}
    assert len(urls) == 1 and urls.pop().startswith("postgresql://nexflow:example-password@")
    assert {e["NEXFLOW_REDIS__URL"] for e in env.values()} == {"redis://redis:6379/0"}
    assert {e["NEXFLOW_HOME"] for e in env.values()} == {"/data"}
    # the durable engine resumes a dead executor's runs only under the same id
    executor_ids = [e["NEXFLOW_FLOWS__EXECUTOR_ID"] for e in env.values()]
    assert len(set(executor_ids)) == len(executor_ids)
    homes, workspaces = [], set()
    for name in NEXFLOW_SERVICES:
        mounts = dict(v.split(":")[1::-1] for v in services[name]["volumes"])
        homes.append(mounts["/data"])
        workspaces.add((mounts["/workspaces"], env[name]["NEXFLOW_WORKSPACES__ROOT"]))
        assert services[name]["env_file"] == ".env" or services[name]["env_file"] == [".env"]
        for dep in ("postgres", "redis"):
            assert services[name]["depends_on"][dep]["condition"] == "service_healthy"
    assert len(set(homes)) == len(homes), "each gateway needs its own NEXFLOW_HOME"
    assert workspaces == {("workspaces", "/workspaces")}


def test_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in GATEWAYS:
        assert "/ready" in " ".join(services[name]["healthcheck"]["test"])
        assert services["proxy"]["depends_on"][name]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "ollama", "proxy"):
        assert _has_healthcheck(services[name]), name
    worker = services["worker"]
    port = worker["command"][worker["command"].index("--health-port") + 1]
    assert f":{port}/health" in " ".join(worker["healthcheck"]["test"])
    # gateways enqueue flow runs, the worker runs them
    for name in NEXFLOW_SERVICES:
        assert services[name]["environment"]["NEXFLOW_FLOWS__RUN_ON"] == "workers"


def test_proxy_balances_both_gateways_and_upgrades_websockets() -> None:
    conf = NGINX_CONF.read_text()
    assert sorted(upstream_servers(conf)) == [("gateway-1", 8080), ("gateway-2", 8080)]
    ws = re.search(r"location /ws/ \{(.*?)\}", conf, re.S)
    assert ws is not None
    assert "proxy_set_header Upgrade $http_upgrade" in ws[1]
    assert "proxy_set_header Connection $connection_upgrade" in ws[1]
    assert re.search(r"map \$http_upgrade \$connection_upgrade", conf)


def test_env_example_documents_required_secrets() -> None:
    documented = documented_variables()
    for name in ("NEXFLOW_GATEWAY_TOKEN", "POSTGRES_PASSWORD"):
        assert name in documented and documented[name] == "", f"{name} must be left to fill in"
    assert "required variable POSTGRES_PASSWORD" in _interpolation_error()


def _interpolation_error() -> str:
    with pytest.raises(ValueError) as info:
        interpolate(COMPOSE.read_text(), {})
    return str(info.value)


def test_mounted_config_is_a_valid_nexflow_config(tmp_path: Path) -> None:
    config = load_config(
        REPO / "deploy" / "compose" / "config.yml", {"NEXFLOW_HOME": str(tmp_path)}
    )
    assert config.logging.format == "json"


# --- a broken file is rejected ---------------------------------------------------------------


def test_schema_rejects_a_broken_compose_file(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["gateway-1"]["depends_on"]["postgres"]["condition"] = "when_ready"
    broken["services"]["worker"]["restart_policy"] = "always"  # not a service key
    broken["services"]["ollama"]["profiles"] = "ollama"  # a list of names
    errors = schema_errors(validator, broken)
    assert any("when_ready" in e for e in errors)
    assert any("restart_policy" in e for e in errors)
    assert any(e.startswith("services/ollama/profiles:") for e in errors)


def test_semantic_check_catches_dangling_references(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["depends_on"]["queue"] = {"condition": "service_started"}
    broken["services"]["worker"]["volumes"].append("scratch:/scratch")
    broken["services"]["worker"]["networks"] = ["default", "backplane"]
    del broken["services"]["gateway-2"]
    text = COMPOSE.read_text() + "\n# ${NEXFLOW_UNDOCUMENTED}\n"
    problems = semantic_problems(broken, NGINX_CONF.read_text(), text)
    assert "worker: depends_on names unknown service 'queue'" in problems
    assert "worker: volume 'scratch' is not declared under volumes:" in problems
    assert "worker: network 'backplane' is not declared under networks:" in problems
    assert "nginx.conf: upstream gateway-2:8080 is not a service" in problems
    assert "proxy: depends_on names unknown service 'gateway-2'" in problems
    assert "${NEXFLOW_UNDOCUMENTED} is not documented in .env.example" in problems
