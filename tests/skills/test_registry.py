"""Registry: precedence between roots, lookups, reload, and the file watcher."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from skills_support import BUNDLED, write_skill

from nexflow.skills import SkillNotFound, SkillRegistry, roots_from
from nexflow.skills.eligibility import HostContext


def test_later_roots_override_earlier_ones(tmp_path: Path) -> None:
    bundled, extra, ws = tmp_path / "bundled", tmp_path / "extra", tmp_path / "ws"
    write_skill(bundled, "greet", description="bundled greet")
    write_skill(bundled, "only-bundled")
    write_skill(extra / "vendor" / "pack", "greet", description="extra greet")  # 4 levels
    write_skill(ws, "greet", description="workspace greet")
    registry = SkillRegistry(roots_from(bundled, ws, [extra]))
    registry.reload()
    assert registry.get("greet").description == "workspace greet"
    assert "only-bundled" in registry
    assert [str(s.source.parent) for s, _ in registry.shadowed] == [
        str(bundled / "greet"),
        str(extra / "vendor" / "pack" / "greet"),
    ]
    with pytest.raises(SkillNotFound, match="no skill named 'nope'"):
        registry.get("nope")


def test_env_dirs_are_path_separated(tmp_path: Path) -> None:
    roots = roots_from(None, None, env=f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert roots == [tmp_path / "a", tmp_path / "b"]


def test_bundled_skills_are_available() -> None:
    registry = SkillRegistry([BUNDLED])
    registry.reload()
    for name in ("shell-run", "file-read"):
        skill = registry.get(name)
        assert skill.available, skill.reason
        assert skill.runnable
        assert skill.input_schema is not None
        assert not skill.warnings
        for section in (
            "Purpose",
            "When to use",
            "How to use",
            "Input schema",
            "Output schema",
            "Examples",
            "Implementation details",
        ):
            assert f"## {section}" in skill.body


def test_eligibility_uses_the_host_context(tmp_path: Path) -> None:
    write_skill(tmp_path, "needs-key", extra={"requirements": {"env": ["DEMO_KEY"]}})
    registry = SkillRegistry([tmp_path], host=HostContext(env={"PATH": "/usr/bin"}))
    registry.reload()
    assert not registry.get("needs-key").available
    assert registry.list(available_only=True) == []
    registry.host = HostContext(env={"PATH": "/usr/bin", "DEMO_KEY": "x"})
    registry.reload()
    assert registry.get("needs-key").available


async def test_watcher_reloads_on_change(tmp_path: Path) -> None:
    root = tmp_path / "skills"
    write_skill(root, "first")
    changed = asyncio.Event()
    registry = SkillRegistry([root], on_change=lambda _r: changed.set(), debounce_ms=50)
    await registry.areload()
    changed.clear()
    registry.start_watching()
    try:
        await asyncio.sleep(0.2)  # let the watcher subscribe before the change
        write_skill(root, "second")
        async with asyncio.timeout(10):
            while "second" not in registry:
                await changed.wait()
                changed.clear()
        (root / "first" / "SKILL.md").write_text("---\nname: first\n---\n")
        async with asyncio.timeout(10):
            while registry.get("first").available:
                await changed.wait()
                changed.clear()
        assert "no 'description'" in (registry.get("first").reason or "")
    finally:
        await registry.stop_watching()
