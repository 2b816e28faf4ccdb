"""home-assistant against a fake Home Assistant REST API on loopback: runner-level
(states, one entity, service calls, errors, bad input) and through the real gateway
(a service call waits for the user; declined, the fake's home is untouched)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bundled_support import (
    answer,
    call_skill,
    failure,
    framed,
    pending_card,
    refusal,
    run_skill,
    skill_gateway,
    start_turn,
)
from fakes_web import HomeAssistant

from nexflow.skills import SkillInputInvalid, SkillPermissionDenied


@pytest.fixture
def ha() -> Iterator[HomeAssistant]:
    with HomeAssistant() as fake:
        yield fake


def grant(ha: HomeAssistant, token: str | None = None) -> dict[str, str]:
    return {"HA_URL": ha.url, "HA_TOKEN": token or ha.token}


async def test_list_states_by_domain_and_all(workspace: Path, ha: HomeAssistant) -> None:
    r = await run_skill(
        "home-assistant", {"action": "list_states", "domain": "light"}, workspace, grant(ha)
    )
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["total"] == 2 and r.data["truncated"] is False
    assert r.data["entities"] == [
        {"entity_id": "light.kitchen", "state": "off", "name": "Kitchen"},
        {"entity_id": "light.porch", "state": "on", "name": "Porch"},
    ]
    seen = ha.requests[-1]
    assert seen.path == "/api/states" and seen.headers["authorization"] == f"Bearer {ha.token}"
    r = await run_skill(
        "home-assistant", {"action": "list_states", "max_results": 2}, workspace, grant(ha)
    )
    assert r.ok and r.data is not None
    assert r.data["total"] == len(ha.states) and r.data["truncated"] is True
    assert [e["entity_id"] for e in r.data["entities"]] == sorted(ha.states)[:2]


async def test_get_state_with_attributes(workspace: Path, ha: HomeAssistant) -> None:
    payload = {"action": "get_state", "entity_id": "sensor.outside_temperature"}
    r = await run_skill("home-assistant", payload, workspace, grant(ha))
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["state"] == "7.5" and r.data["unit"] == "°C" and r.data["name"] == "Outside"
    assert r.data["attributes"]["device_class"] == "temperature"
    assert r.data["last_changed"].startswith("2026-12-05T21:10")


async def test_call_service_changes_the_home(workspace: Path, ha: HomeAssistant) -> None:
    payload = {
        "action": "call_service",
        "domain": "light",
        "service": "turn_on",
        "entity_id": "light.kitchen",
        "data": {"brightness_pct": 40},
    }
    r = await run_skill("home-assistant", payload, workspace, grant(ha))
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["called"] == "light.turn_on"
    assert r.data["changed"] == [{"entity_id": "light.kitchen", "state": "on", "name": "Kitchen"}]
    assert ha.calls == [("light", "turn_on", {"brightness_pct": 40, "entity_id": "light.kitchen"})]
    assert ha.states["light.kitchen"]["attributes"]["brightness"] == 102


async def test_service_errors_are_clear(workspace: Path, ha: HomeAssistant) -> None:
    r = await run_skill("home-assistant", {"action": "list_states"}, workspace, grant(ha, "wrong"))
    assert "rejected HA_TOKEN (401)" in failure(r)
    missing = {"action": "get_state", "entity_id": "light.garage"}
    r = await run_skill("home-assistant", missing, workspace, grant(ha))
    assert "has no entity 'light.garage'" in failure(r)
    unknown = {"action": "call_service", "domain": "light", "service": "explode"}
    r = await run_skill("home-assistant", unknown, workspace, grant(ha))
    assert "answered 400: Service light.explode not found." in failure(r)
    assert ha.calls == []
    down = {"HA_URL": "http://127.0.0.1:9", "HA_TOKEN": "t"}
    r = await run_skill("home-assistant", {"action": "list_states"}, workspace, down)
    assert "connection refused" in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "get_state", "entity_id": "../config"}, "must look like 'light.kitchen'"),
        ({"action": "get_state"}, "must look like 'light.kitchen'"),
        ({"action": "call_service", "domain": "light/../x", "service": "on"}, "'domain' must"),
        ({"action": "call_service", "domain": "light"}, "'service' must"),
        ({"action": "list_states", "max_results": 0}, "'max_results' must be 1 to 500"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_before_any_request(
    workspace: Path, ha: HomeAssistant, payload: dict[str, object], why: str
) -> None:
    assert why in refusal(await run_skill("home-assistant", payload, workspace, grant(ha)))
    assert ha.requests == []


async def test_schema_and_grants_checked_before_spawn(workspace: Path, ha: HomeAssistant) -> None:
    with pytest.raises(SkillInputInvalid, match="not one of"):
        await run_skill("home-assistant", {"action": "delete_all"}, workspace, grant(ha))
    bad_data = {"action": "call_service", "domain": "light", "service": "turn_on", "data": [1]}
    with pytest.raises(SkillInputInvalid, match=r"\$.data: expected object"):
        await run_skill("home-assistant", bad_data, workspace, grant(ha))
    with pytest.raises(SkillPermissionDenied, match="HA_TOKEN"):
        await run_skill(
            "home-assistant",
            {"action": "list_states"},
            workspace,
            {"HA_URL": ha.url},
            host_env=grant(ha),
        )
    assert ha.requests == []


# -- through the gateway -----------------------------------------------------------------


async def test_states_through_the_gateway(home: Path, ha: HomeAssistant) -> None:
    async with skill_gateway(home, {"home-assistant": grant(ha)}) as gw:
        reply, tool, _ = await call_skill(
            gw, "home-assistant", {"action": "list_states", "domain": "switch"}
        )
        assert "switch.coffee" in reply["reply"] and "Coffee machine" in reply["reply"]
        assert (await gw.http.get("/api/v1/confirmations")).json() == []  # reads: no card
        trust, result = framed(tool)
        assert trust == "trusted"  # the admin's own home: declared trusted
        assert result["entities"] == [
            {"entity_id": "switch.coffee", "state": "off", "name": "Coffee machine"}
        ]


async def run_service_call(home: Path, ha: HomeAssistant, approve: bool) -> str:
    async with skill_gateway(home, {"home-assistant": grant(ha)}) as gw:
        payload = {"action": "call_service", "domain": "switch", "service": "turn_on",
                   "entity_id": "switch.coffee"}  # fmt: skip
        turn = start_turn(gw, "home-assistant", payload)
        card = await pending_card(gw, turn)
        assert "switch.coffee" in card["detail"] and "turn_on" in card["detail"]
        assert ha.calls == []  # nothing happens while the card waits
        await answer(gw, card, approve=approve)
        reply = await turn
        text: str = reply["reply"]
        return text


async def test_service_call_runs_only_after_the_user_confirms(
    home: Path, ha: HomeAssistant
) -> None:
    text = await run_service_call(home, ha, approve=True)
    assert ha.calls == [("switch", "turn_on", {"entity_id": "switch.coffee"})]
    assert ha.states["switch.coffee"]["state"] == "on"
    assert "switch.turn_on" in text


async def test_declined_service_call_leaves_the_home_untouched(
    home: Path, ha: HomeAssistant
) -> None:
    text = await run_service_call(home, ha, approve=False)
    assert "declined" in text
    assert ha.calls == [] and ha.states["switch.coffee"]["state"] == "off"
    assert not any(s.path.startswith("/api/services/") for s in ha.requests)
