"""home-assistant against a fake Home Assistant REST API on loopback: runner-level
(states, one entity, service calls, errors, bad input) and through the real gateway
(a service call waits for the user; declined, the fake's home is untouched)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes_web import HomeAssistant
from support_web import failure, gateway, pending_card, refusal, run_skill, tool_output

from nexflow.skills import SkillInputInvalid, SkillPermissionDenied
from nexflow.testing.fake_llm import Reply


@pytest.fixture
def ha() -> Iterator[HomeAssistant]:
    with HomeAssistant() as fake:
        yield fake


def grant(ha: HomeAssistant, token: str | None = None) -> dict[str, str]:
    return {"HA_URL": ha.url, "HA_TOKEN": token or ha.token}


async def test_list_states_by_domain_and_all(tmp_path: Path, ha: HomeAssistant) -> None:
    r = await run_skill(tmp_path, "home-assistant", {"action": "list_states", "domain": "light"},
                        grant(ha))  # fmt: skip
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["total"] == 2 and r.data["truncated"] is False
    assert r.data["entities"] == [
        {"entity_id": "light.kitchen", "state": "off", "name": "Kitchen"},
        {"entity_id": "light.porch", "state": "on", "name": "Porch"},
    ]
    seen = ha.requests[-1]
    assert seen.path == "/api/states" and seen.headers["authorization"] == f"Bearer {ha.token}"
    r = await run_skill(
        tmp_path, "home-assistant", {"action": "list_states", "max_results": 2}, grant(ha)
    )
    assert r.ok and r.data is not None
    assert r.data["total"] == len(ha.states) and r.data["truncated"] is True
    assert [e["entity_id"] for e in r.data["entities"]] == sorted(ha.states)[:2]


async def test_get_state_with_attributes(tmp_path: Path, ha: HomeAssistant) -> None:
    payload = {"action": "get_state", "entity_id": "sensor.outside_temperature"}
    r = await run_skill(tmp_path, "home-assistant", payload, grant(ha))
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["state"] == "7.5" and r.data["unit"] == "°C" and r.data["name"] == "Outside"
    assert r.data["attributes"]["device_class"] == "temperature"
    assert r.data["last_changed"].startswith("2026-12-05T21:10")


async def test_call_service_changes_the_home(tmp_path: Path, ha: HomeAssistant) -> None:
    payload = {
        "action": "call_service",
        "domain": "light",
        "service": "turn_on",
        "entity_id": "light.kitchen",
        "data": {"brightness_pct": 40},
    }
    r = await run_skill(tmp_path, "home-assistant", payload, grant(ha))
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["called"] == "light.turn_on"
    assert r.data["changed"] == [{"entity_id": "light.kitchen", "state": "on", "name": "Kitchen"}]
    assert ha.calls == [("light", "turn_on", {"brightness_pct": 40, "entity_id": "light.kitchen"})]
    assert ha.states["light.kitchen"]["attributes"]["brightness"] == 102


async def test_service_errors_are_clear(tmp_path: Path, ha: HomeAssistant) -> None:
    r = await run_skill(tmp_path, "home-assistant", {"action": "list_states"}, grant(ha, "wrong"))
    assert "rejected HA_TOKEN (401)" in failure(r)
    missing = {"action": "get_state", "entity_id": "light.garage"}
    r = await run_skill(tmp_path, "home-assistant", missing, grant(ha))
    assert "has no entity 'light.garage'" in failure(r)
    unknown = {"action": "call_service", "domain": "light", "service": "explode"}
    r = await run_skill(tmp_path, "home-assistant", unknown, grant(ha))
    assert "answered 400: Service light.explode not found." in failure(r)
    assert ha.calls == []
    down = {"HA_URL": "http://127.0.0.1:9", "HA_TOKEN": "t"}
    r = await run_skill(tmp_path, "home-assistant", {"action": "list_states"}, down)
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
    tmp_path: Path, ha: HomeAssistant, payload: dict[str, object], why: str
) -> None:
    assert why in refusal(await run_skill(tmp_path, "home-assistant", payload, grant(ha)))
    assert ha.requests == []


async def test_schema_and_grants_checked_before_spawn(tmp_path: Path, ha: HomeAssistant) -> None:
    with pytest.raises(SkillInputInvalid, match="not one of"):
        await run_skill(tmp_path, "home-assistant", {"action": "delete_all"}, grant(ha))
    bad_data = {"action": "call_service", "domain": "light", "service": "turn_on", "data": [1]}
    with pytest.raises(SkillInputInvalid, match=r"\$.data: expected object"):
        await run_skill(tmp_path, "home-assistant", bad_data, grant(ha))
    with pytest.raises(SkillPermissionDenied, match="HA_TOKEN"):
        await run_skill(
            tmp_path, "home-assistant", {"action": "list_states"}, {"HA_URL": ha.url},
            host_env=grant(ha),
        )  # fmt: skip
    assert ha.requests == []


# -- through the gateway -----------------------------------------------------------------


async def test_states_through_the_gateway(tmp_path: Path, ha: HomeAssistant) -> None:
    async with gateway(tmp_path, {"home-assistant": grant(ha)}) as gw:
        call = {"name": "home-assistant", "input": {"action": "list_states", "domain": "switch"}}
        gw.llm.push(Reply(tool_calls=(("run_skill", call),)))
        reply = await gw.chat("is the coffee machine on?")
        assert "switch.coffee" in reply["reply"] and "Coffee machine" in reply["reply"]
        assert (await gw.http.get("/api/v1/confirmations")).json() == []  # reads: no card
        trust, result = tool_output(gw)
        assert trust == "trusted"  # the admin's own home: declared trusted
        assert result["entities"] == [
            {"entity_id": "switch.coffee", "state": "off", "name": "Coffee machine"}
        ]


async def run_service_call(tmp_path: Path, ha: HomeAssistant, approve: bool) -> str:
    async with gateway(tmp_path, {"home-assistant": grant(ha)}) as gw:
        payload = {"action": "call_service", "domain": "switch", "service": "turn_on",
                   "entity_id": "switch.coffee"}  # fmt: skip
        gw.llm.push(
            Reply(tool_calls=(("run_skill", {"name": "home-assistant", "input": payload}),))
        )
        turn = asyncio.create_task(gw.chat("make me a coffee"))
        card = await pending_card(gw)
        assert "switch.coffee" in card["detail"] and "turn_on" in card["detail"]
        assert ha.calls == []  # nothing happens while the card waits
        answer = await gw.http.post(
            f"/api/v1/confirmations/{card['id']}", json={"approve": approve}
        )
        assert answer.json()["outcome"] == ("approved" if approve else "declined")
        reply = await turn
        text: str = reply["reply"]
        return text


async def test_service_call_runs_only_after_the_user_confirms(
    tmp_path: Path, ha: HomeAssistant
) -> None:
    text = await run_service_call(tmp_path, ha, approve=True)
    assert ha.calls == [("switch", "turn_on", {"entity_id": "switch.coffee"})]
    assert ha.states["switch.coffee"]["state"] == "on"
    assert "switch.turn_on" in text


async def test_declined_service_call_leaves_the_home_untouched(
    tmp_path: Path, ha: HomeAssistant
) -> None:
    text = await run_service_call(tmp_path, ha, approve=False)
    assert "declined" in text
    assert ha.calls == [] and ha.states["switch.coffee"]["state"] == "off"
    assert not any(s.path.startswith("/api/services/") for s in ha.requests)
