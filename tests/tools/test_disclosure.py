"""Deferred tools: named in load_tools, their schemas sent once the model loads them."""

from __future__ import annotations

from nexflow.orchestrator.checkpoint import Checkpoint
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.tools.base import ToolSpec
from nexflow.tools.disclosure import LOAD_TOOLS, Disclosure, summary

UPFRONT = ToolSpec("run_skill", "Run a skill.")
LATER = ToolSpec("reminder_add", "Schedule a reminder (one-time). More.", deferred=True)
OTHER = ToolSpec("panel_list", "List panels.", deferred=True)


def names(specs: list[ToolSpec]) -> list[str]:
    return [s.name for s in specs]


def test_deferred_tools_are_named_until_loaded() -> None:
    disclosure = Disclosure()
    offered = disclosure.specs([UPFRONT, LATER, OTHER])
    assert names(offered) == ["run_skill", LOAD_TOOLS]
    listing = offered[-1].description
    assert "reminder_add (Schedule a reminder)" in listing and "panel_list" in listing
    answer = disclosure.load({"names": ["reminder_add", "nope"]}, [UPFRONT, LATER, OTHER])
    assert answer == "Loaded reminder_add; call them now. No tool named nope."
    offered = disclosure.specs([UPFRONT, LATER, OTHER])
    assert names(offered) == ["run_skill", "reminder_add", LOAD_TOOLS]
    assert "reminder_add" not in offered[-1].description
    disclosure.show(["panel_list"])
    assert names(disclosure.specs([UPFRONT, LATER, OTHER])) == [
        "run_skill",
        "reminder_add",
        "panel_list",
    ]  # nothing left to load: no load_tools
    assert names(disclosure.specs([UPFRONT, LATER], hidden=["reminder_add"])) == ["run_skill"]


def test_bad_arguments_get_a_clear_answer() -> None:
    assert disclosure_answer({}).startswith("error: give names")
    assert disclosure_answer({"names": "reminder_add"}).startswith("Loaded reminder_add")


def disclosure_answer(args: dict[str, object]) -> str:
    return Disclosure().load(args, [LATER])


def test_summaries_are_first_sentences_cut_at_words() -> None:
    assert summary("Open a panel (e.g. todo). Then more.") == "Open a panel"
    assert summary("e.g. this stays; that goes") == "e.g. this stays"
    long = summary("word " * 30, limit=20)
    assert len(long) <= 20 and not long.endswith(" ")


def test_a_parked_turn_keeps_what_it_loaded() -> None:
    parked = Checkpoint("agent", "k", "t", "d", loaded_tools=["reminder_add"])
    assert Checkpoint.loads(parked.dumps()).loaded_tools == ["reminder_add"]
    older = '{"kind":"agent","call_key":"k","title":"t","detail":"d"}'  # stored before
    assert Checkpoint.loads(older).loaded_tools == []


async def test_the_model_loads_a_tool_then_calls_it(gateway: GatewayHarness) -> None:
    gateway.llm.push(
        Reply(tool_calls=((LOAD_TOOLS, {"names": ["reminder_list"]}),)),
        Reply(tool_calls=(("reminder_list", {}),)),
        Reply(text="You have no reminders."),
    )
    reply = await gateway.chat("what reminders do I have?")
    assert reply["reply"] == "You have no reminders."
    first, second, third = gateway.llm.requests
    assert "reminder_list" not in {t["function"]["name"] for t in first["tools"]}
    assert "reminder_list" in {t["function"]["name"] for t in second["tools"]}
    assert second["messages"][-1]["content"] == "Loaded reminder_list; call them now."
    assert third["messages"][-1]["name"] == "reminder_list"
    assert [c["name"] for c in reply["tool_calls"]] == ["reminder_list"]  # the real call only
