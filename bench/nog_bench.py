"""The Nexus Object Graph: how many tokens its context costs against the raw panel
sources, how long a rebuild and an incremental update take, and what a mirror commit
costs in git.

The workspace: the six bundled template panels with plausible state (a to-do list, notes,
a dashboard with endpoints, a CI run, a flowchart, a server monitor with log lines) and
three Markdown notes. Raw sources = every panel's NXML + its state file as stored in the
workspace (+ the notes, for the second ratio).

Tokens are counted with tiktoken's ``cl100k_base`` read from the copy litellm bundles (no
network); if that cannot load, the estimate is characters / 4 and the script says so.

Usage: ``python bench/nog_bench.py [iterations]`` (default 200).

``python bench/nog_bench.py mirror [runs]`` (default 30) measures the panel mirror inside a
real ``PanelService`` + ``WorkspaceService`` (SQLite, sandbox, git): the round trip of a
tool call (``call_tool``) and of a chat-button ``press`` (the flowchart's two direction
buttons in turn, so every press changes state) with the mirror on, one ``commit_main``
and the git processes it starts, and a burst of 50 tool calls (how many commits they
become, how long until main has them all).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import git.cmd  # noqa: E402
from benchpanels import panel_service  # noqa: E402

from nexflow.config.model import WorkspacesConfig  # noqa: E402
from nexflow.panels import parse  # noqa: E402
from nexflow.panels.runtime.state import initial_state  # noqa: E402
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES  # noqa: E402
from nexflow.workspace.gitrepo import GitRepo  # noqa: E402
from nexflow.workspace.layout import dump_state  # noqa: E402
from nexflow.workspace.nog import build_nog  # noqa: E402
from nexflow.workspace.patching import commit_main  # noqa: E402
from nexflow.workspace.repos import Repos  # noqa: E402
from nexflow.workspace.service import WorkspaceService  # noqa: E402
from nexflow.workspace.store import PatchStore  # noqa: E402

STATES: dict[str, dict[str, Any]] = {
    "todo": {
        "items": [
            {"text": "Restart db-1 after the kernel update", "done": False},
            {"text": "Rotate the api TLS certificate", "done": False},
            {"text": "Write the 1.2 release notes", "done": True},
            {"text": "Move web-2 behind the new load balancer", "done": False},
        ]
    },
    "notes": {
        "notes": [
            {"title": "Release 1.2", "body": "Ship after db-1 is back. Owner: Ana.\n- api\n- web"},
            {"title": "On-call", "body": "Week 47: Boris. Escalate to Ana for db-1."},
        ],
        "selected": 0,
    },
    "dashboard": {
        "service": "api",
        "requests": 1840,
        "error_rate": 0.7,
        "latency_p95": 212,
        "latency_history": [180, 190, 230, 212],
        "endpoints": [
            {"path": "/v1/orders", "rpm": 900, "errors": 3, "p95": 250},
            {"path": "/v1/users", "rpm": 600, "errors": 1, "p95": 120},
            {"path": "/health", "rpm": 340, "errors": 0, "p95": 5},
        ],
        "maintenance": False,
    },
    "ci-pipeline": {
        "jobs": [
            {"name": "build", "stage": "build", "status": "passed", "seconds": 81},
            {"name": "unit", "stage": "test", "status": "failed", "seconds": 140},
        ],
        "log": ["build passed in 81 s", "unit failed: 2 tests"],
        "status": "failed",
        "pipeline": "main #418",
    },
    "server-monitor": {
        "cpu_load": 37.5,
        "status": "healthy",
        "logs": [f"04:0{i}:00 INFO turn_done" for i in range(8)],
    },
}
NOTES = {
    "notes/servers.md": "# Servers\n\n## db-1\nPostgres 16 primary, 64 GB.\n\n"
    "## web-2\nnginx, behind the old load balancer.\n",
    "notes/release.md": "# Release 1.2\n\nShip list: api, web. Blocked by db-1 restart.\n",
    "notes/oncall.md": "# On-call\n\n## Week 47\nBoris; Ana is the escalation.\n",
}


def tokenizer() -> tuple[Callable[[str], int], str]:
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.submodule_search_locations:
        cache = Path(spec.submodule_search_locations[0]) / "litellm_core_utils" / "tokenizers"
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    try:
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base")
        return (lambda text: len(enc.encode(text))), "tiktoken cl100k_base"
    except Exception as exc:  # any failure means "no real tokenizer here"
        return (lambda text: len(text) // 4), f"estimate chars/4 ({type(exc).__name__})"


def median_ms(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    count, how = tokenizer()
    sources = {p.stem: p.read_text() for p in sorted(BUNDLED_TEMPLATES.glob("*.nxml"))}
    parsed = {name: parse(text) for name, text in sources.items()}
    states = {name: STATES.get(name, initial_state(p)) for name, p in parsed.items()}
    panels = [(name, parsed[name], states[name]) for name in sources]

    graph = build_nog("bench/default", panels, NOTES)
    context = graph.to_context()
    raw_panels = "\n".join(sources[n_] + "\n" + dump_state(states[n_]) for n_ in sources)
    raw_all = raw_panels + "\n" + "\n".join(NOTES.values())
    t_ctx, t_panels, t_all = count(context), count(raw_panels), count(raw_all)

    rebuild = median_ms(lambda: build_nog("bench/default", panels, NOTES), n)
    from_text = median_ms(
        lambda: build_nog(
            "bench/default", [(k, parse(v), states[k]) for k, v in sources.items()], NOTES
        ),
        max(n // 4, 10),
    )
    todo = parsed["todo"]
    changed = {"items": [*STATES["todo"]["items"], {"text": "Check db-1 backups", "done": False}]}
    incremental = median_ms(lambda: graph.update_panel("todo", todo, changed), n)
    serialise = median_ms(graph.to_context, n)

    with tempfile.TemporaryDirectory() as tmp:
        files = {f"panels/{k}.nxml": v for k, v in sources.items()}
        files |= {f"panels/{k}.state.json": dump_state(s) for k, s in states.items()}
        repo = GitRepo.create(Path(tmp) / "ws", {**files, **NOTES}, "bench", "bench")
        step = iter(range(10**9))

        def mirror() -> None:
            i = next(step)
            state = {"items": [*STATES["todo"]["items"], {"text": f"task {i}", "done": False}]}
            commit_main(repo, {"panels/todo.state.json": dump_state(state)}, "m", "u", 10**9)

        commit = median_ms(mirror, max(n // 10, 10))
        repo.close()

    c = graph.counts()
    print(f"workspace: {len(panels)} panels, {len(NOTES)} notes; tokenizer: {how}")
    print(
        f"graph: {c['entity']} entities, {c['logic']} logic, {c['view']} views, "
        f"{c['relations']} relations"
    )
    print(f"NOG context:              {t_ctx:6d} tokens ({len(context)} chars)")
    print(f"raw panels (NXML+state):  {t_panels:6d} tokens  -> NOG is {t_ctx / t_panels:.0%}")
    print(f"raw panels + notes:       {t_all:6d} tokens  -> NOG is {t_ctx / t_all:.0%}")
    print(f"rebuild (parsed panels):  {rebuild:8.3f} ms median of {n}")
    print(f"rebuild (from NXML text): {from_text:8.3f} ms median of {max(n // 4, 10)}")
    print(f"incremental panel update: {incremental:8.3f} ms median of {n}")
    print(f"to_context():             {serialise:8.3f} ms median of {n}")
    print(f"mirror commit (git):      {commit:8.3f} ms median of {max(n // 10, 10)}")


class SpawnCounter:
    """Counts the processes GitPython starts (persistent ``cat-file`` ones included)."""

    def __init__(self) -> None:
        self.count = 0
        self._popen = git.cmd.safer_popen

    def __enter__(self) -> SpawnCounter:
        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return self._popen(*args, **kwargs)

        git.cmd.safer_popen = counting
        return self

    def __exit__(self, *exc: object) -> None:
        git.cmd.safer_popen = self._popen


async def settle(ws: WorkspaceService) -> None:
    """Wait until main has every panel change (a no-op where the mirror is synchronous)."""
    flush = getattr(ws.mirror, "flush", None)
    if flush is not None:
        await flush()


def _stats(xs: list[float]) -> str:
    return f"median {statistics.median(xs):7.2f} ms  p90 {sorted(xs)[int(len(xs) * 0.9)]:7.2f}"


async def _timed(ws: WorkspaceService, fn: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        await fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
        await settle(ws)  # each run starts with the mirror idle
    return samples


def _commit_costs(path: Path, runs: int) -> tuple[list[float], list[int]]:
    """``commit_main`` alone: its time and the git processes it starts."""
    commit_ms: list[float] = []
    spawns: list[int] = []
    repo = GitRepo(path)
    repo.head()
    repo.read(repo.head() or "", "README.md")  # the persistent processes start here
    for i in range(runs):
        state = {"items": [{"text": f"bench {i}", "done": False}]}
        files: dict[str, str | None] = {"panels/todo.state.json": dump_state(state)}
        with SpawnCounter() as counter:
            t0 = time.perf_counter_ns()
            commit_main(repo, files, f"bench {i}", "bench", 10**9)
            commit_ms.append((time.perf_counter_ns() - t0) / 1e6)
        spawns.append(counter.count)
    repo.close()
    return commit_ms, spawns


async def mirror_bench(runs: int) -> None:
    user = "bench"
    async with panel_service() as (panels, storage, base):
        ws = WorkspaceService(
            Repos(WorkspacesConfig(), base / "workspaces"),
            panels,
            PatchStore(storage),
            None,
            storage,
        )
        await ws.start()
        await panels.create(template="todo", owner=user)
        await panels.create(template="flowchart", owner=user)
        directions = [b.action for b in (await panels.snapshot("flowchart")).buttons]
        step = iter(range(10**9))

        async def add() -> None:
            text = f"task {next(step)}"
            outcome = await panels.call_tool("todo", "add_item", {"text": text}, user_id=user)
            if not outcome.ok:
                raise SystemExit(outcome.error)

        async def press() -> None:
            action = directions[next(step) % 2]  # alternate: every press changes state
            outcome, _ = await panels.press(action, user_id=user)
            if not outcome.ok:
                raise SystemExit(outcome.error)

        for _ in range(5):  # warm-up: sandbox, caches, git's persistent processes
            await add()
            await press()
        await settle(ws)
        call = await _timed(ws, add, runs)
        pressed = await _timed(ws, press, runs)

        path = ws.workspace_path(user)
        repo = GitRepo(path)
        before = len(repo.log("refs/heads/main", [], 10_000))
        start = time.perf_counter_ns()
        for _ in range(50):
            await add()
        burst = (time.perf_counter_ns() - start) / 1e6
        await settle(ws)
        drained = (time.perf_counter_ns() - start) / 1e6
        commits = len(repo.log("refs/heads/main", [], 10_000)) - before
        repo.close()
        commit_ms, spawns = _commit_costs(path, runs)
        await ws.stop()

    print(f"mirror: todo + flowchart panels, {runs} runs each")
    print(f"call_tool round trip, mirror on:  {_stats(call)}")
    print(f"press (chat button), mirror on:   {_stats(pressed)}")
    print(f"one mirror commit (commit_main):  {_stats(commit_ms)}")
    print(f"git processes per commit:         {statistics.median(spawns):.0f}")
    print(
        f"burst of 50 tool calls:           {burst:7.1f} ms to return, {drained:7.1f} ms "
        f"until main has them, {commits} commit(s)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["mirror"]:
        asyncio.run(mirror_bench(int(sys.argv[2]) if len(sys.argv) > 2 else 30))
    else:
        main()
