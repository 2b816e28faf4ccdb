"""SIGKILL a real ``nexflow serve`` 10 times around a flow's ``approval`` node, restarting
it each time on the same home and ``flows.executor_id``: each run's approval is asked
once (one ``approvals`` row, one card in the outbox, one card id the browser saw), its
answer is applied once, the run ends as answered, and the step after it ran once.

The runs are started from a web chat (``/flow run gate tag=…`` over ``POST
/api/v1/chat``), so their cards go to that session: a browser tab (a WebSocket on
``/ws/chat/<session>``, reconnecting after each kill) sees them and acknowledges them.
The flow saves a fact (``memory_save``), asks, and saves another fact after a yes. The
kills come at chosen moments of each run (:data:`PLANS`): before the card is stored
(right after the first fact lands), once the card is stored while no tab is open (not
delivered), once the tab has the card but has not acknowledged it, the moment the
answer is stored (before the answer reaches the engine), right after the answer's
``200``, and right after the fact of the step after the approval lands. Answers are
given as a person would: over ``POST /api/v1/confirmations/{id}``, once, and again only
if the card still shows ``pending`` after a restart. A kill between storing the answer
and sending it to the engine left the node waiting for good (the card shows the answer,
answering again is "expired") until the restart handed stored answers to waiting nodes
(``FlowService._redeliver``); without it, r0 and r2 never ran their last step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.process import db_rows
from tests.e2e.test_flows_sigkill import (
    TOKEN,
    Gateway,
    daily_notes,
    effect_applied,
    settle,
    slow_echo,
)

pytestmark = pytest.mark.slow

FLOW = """\
name: gate
inputs:
  tag: {type: string, required: true}
nodes:
  first: {type: tool, tool: memory_save, args: {text: "fx-${inputs.tag}-first"}}
  ask: {type: approval, needs: [first], title: "Go on with ${inputs.tag}?", expires_s: 300}
  after: {type: tool, tool: memory_save, needs: [ask], args: {text: "fx-${inputs.tag}-after"}}
"""
BULLET = re.compile(r"^- fx-(\w+)-(first|after)\b", re.MULTILINE)
# per run: its answer and the moments it is killed at (10 kills in all)
PLANS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "r0": (True, ("before_card", "card_stored", "card_seen", "answer_stored")),
    "r1": (False, ("card_stored", "answered")),
    "r2": (True, ("card_seen", "answer_stored", "after_effect")),
    "r3": (True, ("answered",)),
}
KILLS = sum(len(kills) for _, kills in PLANS.values())


class Tab:
    """A browser tab on one session: records every confirmation card it is sent and
    acknowledges each reply, except cards while ``hold`` is set; closed while
    ``attached`` is unset; reconnects after the gateway goes away."""

    def __init__(self, gw: Gateway, session: str) -> None:
        self.url = f"{gw.url.replace('http', 'ws')}/ws/chat/{session}"
        self.cards: list[dict[str, Any]] = []  # confirmation frames, as they came
        self.attached = True
        self.hold = False
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            await self._task

    def card_of(self, approval_id: str) -> list[dict[str, Any]]:
        return [c for c in self.cards if c["confirmation_id"] == approval_id]

    async def _run(self) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        while not self._stop:
            if not self.attached:
                await asyncio.sleep(0.01)
                continue
            with contextlib.suppress(OSError, websockets.WebSocketException, TimeoutError):
                async with websockets.connect(
                    self.url, additional_headers=auth, open_timeout=2
                ) as ws:
                    while self.attached and not self._stop:
                        try:
                            async with asyncio.timeout(0.02):
                                frame = json.loads(await ws.recv())
                        except TimeoutError:
                            continue
                        if frame.get("type") != "reply":
                            continue
                        card = frame.get("kind") == "confirmation"
                        if card:
                            self.cards.append(frame)
                        if "outbox_id" in frame and not (card and self.hold):
                            ack = {"type": "ack", "outbox_id": frame["outbox_id"]}
                            await ws.send(json.dumps(ack))
            await asyncio.sleep(0.02)


def approvals_of(home: Path, run_id: str) -> list[tuple[Any, ...]]:
    return db_rows(
        home / "nexflow.db",
        "SELECT id, status, session_id, channel FROM approvals WHERE call_key LIKE ?",
        (f"flow:{run_id}:%",),
    )


def cards_in_outbox(home: Path, approval_id: str) -> list[tuple[Any, ...]]:
    return db_rows(
        home / "nexflow.db",
        "SELECT id, status FROM outbox WHERE payload LIKE ?",
        (f'%"confirmation_id":"{approval_id}"%',),
    )


async def until(check: Callable[[], bool], within: float, what: str, step: float = 0.002) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(step)


class Scenario:
    def __init__(self, gw: Gateway, session: str, tab: Tab) -> None:
        self.gw, self.session, self.tab = gw, session, tab
        self.runs: dict[str, str] = {}  # tag -> run id
        self.kills: list[tuple[str, str, str]] = []  # (tag, moment, what it found)
        self.answers: Counter[str] = Counter()  # approval id -> answers given

    def approval(self, tag: str) -> tuple[Any, ...] | None:
        rows = approvals_of(self.gw.home, self.runs[tag])
        assert len(rows) <= 1, rows  # asked twice
        return rows[0] if rows else None

    async def start_run(self, tag: str) -> None:
        async with self.gw.client() as http:
            resp = await http.post(
                "/api/v1/chat",
                json={"message": f"/flow run gate tag={tag}", "session": self.session},
            )
        assert resp.status_code == 200, resp.text
        found = re.search(r"task ([\w-]+)\.", resp.json()["reply"])
        assert found, resp.json()
        self.runs[tag] = found.group(1)

    async def answer(self, tag: str, approve: bool) -> httpx.Response:
        row = self.approval(tag)
        assert row is not None
        self.answers[str(row[0])] += 1
        async with self.gw.client() as http:
            return await http.post(f"/api/v1/confirmations/{row[0]}", json={"approve": approve})

    def prepare(self, moment: str | None) -> None:
        """Set the tab up for the next kill (before the moment can come)."""
        self.tab.attached = moment != "card_stored"  # no tab: the card is not delivered
        self.tab.hold = moment == "card_seen"  # the tab gets the card, does not ack it

    async def kill_at(self, tag: str, moment: str, approve: bool, then: str | None) -> None:
        home = self.gw.home
        if moment == "before_card":  # the first fact just landed: nothing asked yet
            await effect_applied(home, within=10)
            self.gw.kill()
            found = "asked" if self.approval(tag) else "not asked"
        elif moment == "card_stored":  # stored while no tab is open: not delivered
            await until(lambda: self.approval(tag) is not None, 15, f"{tag}'s card")
            self.gw.kill()
            row = self.approval(tag)
            assert row is not None
            found = ",".join(str(s) for _, s in cards_in_outbox(home, str(row[0])))
        elif moment == "card_seen":  # the tab has the card and has not acknowledged it
            await until(lambda: self._seen(tag), 15, f"{tag}'s card in the tab")
            self.gw.kill()
            row = self.approval(tag)
            assert row is not None
            found = ",".join(str(s) for _, s in cards_in_outbox(home, str(row[0])))
        elif moment == "answer_stored":  # the answer is stored, the engine may not have it
            await until(lambda: self._seen(tag), 15, f"{tag}'s card in the tab")
            answering = asyncio.create_task(self.answer(tag, approve))
            await until(lambda: self._decided(tag), 15, f"{tag}'s answer", step=0.0005)
            self.gw.kill()
            with contextlib.suppress(httpx.HTTPError):
                await answering
            found = "answered" if answering.exception() is None else "no response"
        elif moment == "answered":  # the answer's 200 just came back
            await until(lambda: self._seen(tag), 15, f"{tag}'s card in the tab")
            resp = await self.answer(tag, approve)
            assert resp.status_code == 200, resp.text
            self.gw.kill()
            found = resp.json()["outcome"]
        elif moment == "after_effect":  # the step after the approval just saved its fact
            before = self._facts(tag, "after")
            await until(lambda: self._facts(tag, "after") > before, 15, f"{tag}'s last fact")
            self.gw.kill()
            found = "after saved"
        else:
            raise AssertionError(moment)
        self.kills.append((tag, moment, found))
        self.prepare(then)
        await self.gw.start()

    async def make_sure_answered(self, tag: str, approve: bool) -> None:
        """The person answers (again) only while the card still shows pending."""
        await until(lambda: self._seen(tag), 15, f"{tag}'s card in the tab")
        if not self._decided(tag):
            resp = await self.answer(tag, approve)
            assert resp.status_code == 200, resp.text
            assert resp.json()["outcome"] == ("approved" if approve else "declined")

    def _seen(self, tag: str) -> bool:
        row = self.approval(tag)
        return row is not None and bool(self.tab.card_of(str(row[0])))

    def _decided(self, tag: str) -> bool:
        row = self.approval(tag)
        return row is not None and row[1] != "pending"

    def _facts(self, tag: str, node: str) -> int:
        notes = "".join(p.read_text(encoding="utf-8") for p in daily_notes(self.gw.home))
        return BULLET.findall(notes).count((tag, node))


def check_run(
    scenario: Scenario,
    tag: str,
    approve: bool,
    moments: tuple[str, ...],
    task: dict[str, Any],
    facts: Counter[tuple[str, str]],
) -> None:
    home, tab = scenario.gw.home, scenario.tab
    stages = {s["node"]: s for s in task["stages"]}
    rows = approvals_of(home, scenario.runs[tag])
    # asked once: one approval, bound to the chat the run was started from
    assert len(rows) == 1, (tag, rows)
    approval_id, status, session_id, channel = rows[0]
    assert (session_id, channel) == (scenario.session, "web"), rows
    # answered once, as answered
    assert status == ("approved" if approve else "declined"), (tag, status)
    assert scenario.answers[str(approval_id)] == 1, (tag, scenario.answers)
    audit = db_rows(
        home / "nexflow.db",
        "SELECT outcome FROM audit WHERE kind='confirmation' AND data LIKE ?",
        (f'%"id":"{approval_id}"%',),
    )
    # audited exactly once each: the request's and the answer's records are written in
    # the approval row's own transaction, so no kill can separate them
    outcomes = Counter(o for (o,) in audit)
    assert outcomes == Counter({"requested": 1, status: 1}), (tag, audit)
    # one card, delivered (acknowledged) once; the tab saw only that card for the run
    outbox = cards_in_outbox(home, str(approval_id))
    assert [s for _, s in outbox] == ["delivered"], (tag, outbox)
    seen = tab.card_of(str(approval_id))
    assert {c["outbox_id"] for c in seen} == {outbox[0][0]}, (tag, seen)
    if "card_seen" in moments:  # not acknowledged before the kill: sent again after
        assert len(seen) >= 2, (tag, seen)
    # the run ended as answered; the approval node and the step after it ran once
    assert stages["ask"]["attempts"] == 1, stages
    assert facts[(tag, "first")] == 1, facts
    if approve:
        assert task["status"] == "completed", task
        assert stages["after"]["status"] == "completed", stages
        assert stages["after"]["attempts"] == 1, stages
        assert facts[(tag, "after")] == 1, facts
    else:
        assert task["status"] == "failed", task
        assert stages["ask"]["status"] == "failed", stages
        assert "declined" in str(stages["ask"]["error"]), stages
        assert stages["after"]["status"] in ("skipped", "pending"), stages
        assert facts[(tag, "after")] == 0, facts


async def test_ten_sigkills_around_approvals_ask_once_and_apply_once(tmp_path: Path) -> None:
    llm = FakeLLMServer(brain=slow_echo)
    gw = Gateway(tmp_path, await llm.start())
    tab: Tab | None = None
    try:
        await gw.start()
        async with gw.client() as http:
            resp = await http.post("/api/v1/flows", json={"name": "gate", "yaml": FLOW})
            assert resp.status_code == 200, resp.text
            hello = await http.post("/api/v1/chat", json={"message": "/flows"})
            assert hello.status_code == 200, hello.text
        session = hello.json()["session"]
        tab = Tab(gw, session)
        tab.start()
        scenario = Scenario(gw, session, tab)
        for tag, (approve, moments) in PLANS.items():
            scenario.prepare(moments[0])
            await scenario.start_run(tag)
            for moment, then in zip(moments, (*moments[1:], None), strict=True):
                await scenario.kill_at(tag, moment, approve, then)
            await scenario.make_sure_answered(tag, approve)
        ids = list(scenario.runs.values())
        async with gw.client() as http:
            tasks = await settle(http, ids, within=30)
            pending = (await http.get("/api/v1/confirmations")).json()
    finally:
        if tab is not None:
            await tab.stop()
        gw.stop()
        await llm.stop()

    kills = scenario.kills
    assert len(kills) == KILLS, kills
    # the kills landed where they were meant to
    for tag, moment, found in kills:
        if moment == "before_card":
            assert found == "not asked", (tag, moment, found)
        if moment in ("card_stored", "card_seen"):
            assert found != "delivered" and found, (tag, moment, found)

    assert pending == []  # nothing left to answer
    notes = "".join(p.read_text(encoding="utf-8") for p in daily_notes(gw.home))
    facts = Counter(BULLET.findall(notes))
    for tag, (approve, moments) in PLANS.items():
        check_run(scenario, tag, approve, moments, tasks[scenario.runs[tag]], facts)
    # a kill came after an answer was stored and before the engine had it: the restart
    # handed the stored answer to the waiting node
    assert '"flow_answer_redelivered"' in gw.log.read_text()
    # every card the tab was ever sent is one of the four runs' cards
    assert len({c["confirmation_id"] for c in tab.cards}) == len(PLANS), tab.cards
