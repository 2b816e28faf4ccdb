"""``GET``/``PUT /api/v1/settings`` through the real gateway: owner only, secrets never
sent back, a bad value refused with the start-up loader's own message and the file left
as it was, a valid change written and visible, logging applied without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from web_users import CAROL, as_carol, gateway_with_carol

from nexflow.config.edit import ConfigFile
from nexflow.testing.harness import GatewayHarness

SECRET = "sk-never-shown-0123456789"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    extra = {"connectors": {}, "budgets": {"per_user_daily_tokens": 1000}}
    async with gateway_with_carol(tmp_path, extra) as harness:
        assert harness.app is not None
        harness.app.web.state.config_file = ConfigFile(
            tmp_path / "config.yml",
            {"NEXFLOW_HOME": str(harness.home), "MY_KEY": SECRET},
        )
        yield harness


def config_path(gw: GatewayHarness) -> Path:
    assert gw.app is not None
    source = gw.app.web.state.config_file
    assert isinstance(source, ConfigFile) and source.path is not None
    return source.path


async def put(gw: GatewayHarness, changes: dict[str, Any]) -> httpx.Response:
    return await gw.http.put("/api/v1/settings", json={"changes": changes})


async def test_only_the_owner_sees_or_changes_the_settings(gw: GatewayHarness) -> None:
    async with as_carol(gw) as carol:
        assert (await carol.get("/api/v1/settings")).status_code == 403
        resp = await carol.put("/api/v1/settings", json={"changes": {"agent.max_steps": 3}})
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "forbidden"
    assert (await gw.http.get("/api/v1/settings")).status_code == 200


async def test_secrets_are_masked_and_never_sent_back(gw: GatewayHarness) -> None:
    resp = await put(gw, {"llm.models.extra.model": "openai/x", "llm.models.extra.api_key": SECRET})
    assert resp.status_code == 200, resp.text
    assert SECRET not in resp.text
    settings = (await gw.http.get("/api/v1/settings")).json()
    text = str(settings)
    assert SECRET not in text and CAROL not in text
    assert settings["config"]["web"]["users"]["carol"] == "***"
    assert settings["config"]["llm"]["models"]["extra"]["api_key"] == "***"
    assert settings["secrets"]["llm.models.extra.api_key"] is True
    assert settings["secrets"]["web.token"] is False
    assert (
        yaml.safe_load(config_path(gw).read_text())["llm"]["models"]["extra"]["api_key"] == SECRET
    )
    # "***" back means unchanged
    assert (await put(gw, {"llm.models.extra.api_key": "***"})).json()["changed"] == []
    assert SECRET in config_path(gw).read_text()


async def test_a_bad_value_is_refused_with_the_configs_message(gw: GatewayHarness) -> None:
    before = config_path(gw).read_text()
    resp = await put(gw, {"budgets.per_user_daily_tokens": -5})
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"]["code"] == "invalid_config"
    assert body["error"]["message"] == (
        "budgets.per_user_daily_tokens: Input should be greater than or equal to 0\n"
        "    hint: the value is too small"
    )
    assert body["problems"] == [
        {
            "path": "budgets.per_user_daily_tokens",
            "message": "Input should be greater than or equal to 0",
            "hint": "the value is too small",
        }
    ]
    assert config_path(gw).read_text() == before
    resp = await put(gw, {"agent.max_stepz": 3})
    assert resp.status_code == 422
    assert "unknown option" in resp.json()["error"]["message"]
    assert "did you mean 'max_steps'?" in resp.json()["error"]["message"]


async def test_a_valid_change_is_written_and_visible(gw: GatewayHarness) -> None:
    resp = await put(gw, {"budgets.per_user_daily_tokens": 2500, "logging.level": "info"})
    assert resp.status_code == 200, resp.text
    saved = resp.json()
    assert saved["changed"] == ["budgets.per_user_daily_tokens", "logging.level"]
    assert saved["applied"] == ["logging.level"]
    assert saved["restart_required"] == ["budgets.per_user_daily_tokens"]
    raw = yaml.safe_load(config_path(gw).read_text())
    assert raw["budgets"]["per_user_daily_tokens"] == 2500
    assert raw["web"]["users"]["carol"] == CAROL  # other keys kept
    settings = (await gw.http.get("/api/v1/settings")).json()
    assert settings["config"]["budgets"]["per_user_daily_tokens"] == 2500
    assert "budgets.per_user_daily_tokens" in settings["pending_restart"]
    assert settings["live"] == ["logging.level", "logging.format", "skills.disabled"]
    assert settings["path"] == str(config_path(gw))


async def test_an_empty_change_is_a_clear_422(gw: GatewayHarness) -> None:
    resp = await gw.http.put("/api/v1/settings", json={"changes": {}})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_request"
