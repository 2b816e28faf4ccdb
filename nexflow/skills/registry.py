"""The loaded skills, reloaded on demand or by a supervised file watcher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from nexflow.backoff import Backoff, pause
from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.errors import SkillNotFound
from nexflow.skills.install.check import locks_beside, refuse_tampered
from nexflow.skills.loader import DEFAULT_MAX_DEPTH, load_roots
from nexflow.skills.model import Skill

log = logging.getLogger(__name__)

DISABLED_REASON = "switched off in the settings (skills.disabled)"
WATCH_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)  # a failed watcher restarts after 0.5 s, 1 s …


class SkillRegistry:
    """Holds the skills found under ``roots`` (later roots override earlier ones).

    Nothing is loaded until :meth:`reload` (or :meth:`areload`). ``on_change`` is called
    after every reload, e.g. to refresh the prompt index or notify the web UI.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        host: HostContext | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
        on_change: Callable[[SkillRegistry], None] | None = None,
        debounce_ms: int = 300,
        locks: Sequence[Path] | None = None,
        disabled: Sequence[str] = (),
    ) -> None:
        self.roots = tuple(roots)
        # Install locks (docs/skills.md, "Installing skills safely"); by default the
        # skills.lock beside each root. A locked skill whose files changed is refused.
        self.locks = tuple(locks) if locks is not None else tuple(locks_beside(self.roots))
        self.host = host or HostContext()
        self._max_depth = max_depth
        self._on_change = on_change
        self._debounce_ms = debounce_ms
        self._loaded: dict[str, Skill] = {}  # as evaluated on this host
        self._skills: dict[str, Skill] = {}  # the same, with the switched-off ones marked
        self._disabled = frozenset(disabled)
        self._shadowed: tuple[tuple[Skill, Path], ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    def list(self, *, available_only: bool = False) -> list[Skill]:
        skills = list(self._skills.values())
        return [s for s in skills if s.available] if available_only else skills

    def get(self, name: str) -> Skill:
        try:
            return self._skills[name]
        except KeyError:
            raise SkillNotFound(f"no skill named {name!r} (see /skills)") from None

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    def __len__(self) -> int:
        return len(self._skills)

    @property
    def shadowed(self) -> tuple[tuple[Skill, Path], ...]:
        """Skills hidden by a same-named skill, each with the path of the one that won."""
        return self._shadowed

    def reload(self) -> None:
        """Load all roots again (blocking file I/O: use :meth:`areload` on the event loop)."""
        result = load_roots(self.roots, self._max_depth)
        loaded = refuse_tampered(result.skills, self.locks)
        self._loaded = {name: evaluate(s, self.host) for name, s in loaded.items()}
        self._skills = self._switched(self._loaded)
        self._shadowed = result.shadowed
        unavailable = sum(not s.available for s in self._skills.values())
        log.info("loaded %d skills (%d unavailable)", len(self._skills), unavailable)
        if self._on_change is not None:
            self._on_change(self)

    @property
    def disabled(self) -> frozenset[str]:
        return self._disabled

    def set_disabled(self, names: Sequence[str]) -> None:
        """Switch skills off by name (``skills.disabled``) or back on, without reloading."""
        self._disabled = frozenset(names)
        self._skills = self._switched(self._loaded)
        if self._on_change is not None:
            self._on_change(self)

    def _switched(self, skills: dict[str, Skill]) -> dict[str, Skill]:
        return {
            name: skill.with_status(available=False, reason=DISABLED_REASON)
            if name in self._disabled
            else skill
            for name, skill in skills.items()
        }

    async def areload(self) -> None:
        await asyncio.to_thread(self.reload)

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload whenever a file under a root changes, until ``stop`` is set.

        Supervised: a watcher failure is logged with its traceback and the watch restarts
        after a back-off; it never ends the task on its own.
        """
        from watchfiles import awatch  # optional dependency: only the watcher needs it

        failures = 0  # in a row; a reload resets it
        while not stop.is_set():
            roots = [r for r in self.roots if r.is_dir()]
            try:
                if not roots:
                    await asyncio.wait_for(stop.wait(), timeout=5.0)
                    continue
                async for _changes in awatch(
                    *roots, stop_event=stop, debounce=self._debounce_ms, recursive=True
                ):
                    await self.areload()
                    failures = 0
            except TimeoutError:
                continue
            except Exception:
                failures += 1
                delay = WATCH_BACKOFF.delay(failures)
                log.exception("skills watcher failed; restarting in %.1f s", delay)
                await pause(delay, stop)

    def start_watching(self) -> None:
        """Start the owned watcher task (stop it with :meth:`stop_watching`)."""
        if self._task is not None:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.watch(self._stop), name="skills-watcher")

    async def stop_watching(self) -> None:
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        await task
