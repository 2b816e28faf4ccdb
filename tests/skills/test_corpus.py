"""Every SKILL.md of the compatibility corpus loads, or is unavailable for the right reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from skills_support import CORPUS

from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.loader import iter_skill_files, load_roots, load_skill

# Skills that cannot load whatever the host offers, and the exact (file:line) reason.
BROKEN = {
    "clawhub/dropbox": r"SKILL\.md: frontmatter has no 'description'",
    "clawhub/fast-browser-use": r"SKILL\.md: frontmatter has no 'description'",
    "clawhub/google-home": r"SKILL\.md:4: 'metadata' is neither valid JSON nor valid YAML",
    "clawhub/obsidian-daily": r"SKILL\.md:4: unresolved git merge-conflict marker",
    "openclaw/canvas": r"SKILL\.md:1: no YAML frontmatter",
    "openclaw/lobster": r"SKILL\.md:1: no YAML frontmatter",
    "openclaw-history/taskflow-inbox-triage": (
        r"SKILL\.md:1: frontmatter is missing its opening '---' .*closed by '---' on line 5"
    ),
}
# Recovered by the OpenClaw-compatible line parser (unquoted ': ' in the description).
RECOVERED = {
    "clawhub/a-stock-analysis",
    "openclaw-moltbot-era/discord",
    "openclaw-moltbot-era/food-order",
}
# Load with a warning: breaking the Agent Skills style rules does not refuse a skill.
LONG_DESCRIPTION = {"anthropics/claude-api": 1068}
NAME_DIFFERS = {
    "anthropics/template": "template-skill",
    "vercel/composition-patterns": "vercel-composition-patterns",
}


def corpus_files() -> list[Path]:
    return list(iter_skill_files(CORPUS))


def key(path: Path) -> str:
    return str(path.parent.relative_to(CORPUS))


def generous_host(tmp: Path) -> HostContext:
    """A host with every binary, env variable and config key any corpus skill asks for."""
    bindir = tmp / "bin"
    bindir.mkdir()
    env: dict[str, str] = {"PATH": str(bindir)}
    config: set[str] = set()
    for path in corpus_files():
        skill = load_skill(path)
        for name in (*skill.requirements.bins, *skill.requirements.any_bins):
            exe = bindir / name
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
        env.update({name: "x" for name in skill.requirements.env})
        config.update(skill.requirements.config)
    return HostContext(env=env, platform="linux", config_keys=frozenset(config))


def test_the_whole_corpus_is_walked() -> None:
    files = corpus_files()
    assert len(files) == 76
    assert {key(p) for p in files} >= (
        set(BROKEN) | RECOVERED | set(NAME_DIFFERS) | set(LONG_DESCRIPTION)
    )


@pytest.mark.parametrize("path", corpus_files(), ids=key)
def test_each_skill_loads_or_is_unavailable_for_its_reason(path: Path, tmp_path: Path) -> None:
    skill = load_skill(path)
    if key(path) in BROKEN:
        assert not skill.available
        assert skill.reason is not None
        assert re.search(BROKEN[key(path)], skill.reason), skill.reason
        assert skill.reason.startswith(str(path))
        return
    assert skill.load_error is None, skill.load_error
    assert skill.description
    assert len(skill.description) == LONG_DESCRIPTION.get(key(path), len(skill.description))
    assert (len(skill.description) > 1024) is (key(path) in LONG_DESCRIPTION)
    assert skill.name == NAME_DIFFERS.get(key(path), path.parent.name)
    # Given everything it asks for, the skill is available...
    assert evaluate(skill, generous_host(tmp_path)).available
    # ...and on a bare host it is unavailable exactly when it needs something, naming it.
    bare = evaluate(skill, HostContext(env={"PATH": str(tmp_path / "empty")}, platform="linux"))
    req = skill.requirements
    needs = req.bins or req.any_bins or req.env or req.config
    assert bare.available is not bool(needs)
    if needs:
        assert bare.reason is not None
        for name in (*req.bins, *req.env, *req.config):
            assert name in bare.reason


@pytest.mark.parametrize("folder", sorted(RECOVERED))
def test_invalid_yaml_is_recovered_with_a_warning(folder: str) -> None:
    skill = load_skill(CORPUS / folder / "SKILL.md")
    assert skill.load_error is None
    assert any("not strict YAML (line 3" in w for w in skill.warnings)
    assert ": " in skill.description


@pytest.mark.parametrize("folder", sorted(LONG_DESCRIPTION))
def test_long_description_is_a_warning(folder: str) -> None:
    skill = load_skill(CORPUS / folder / "SKILL.md")
    assert skill.load_error is None
    assert any("description is 1068 characters" in w for w in skill.warnings)


@pytest.mark.parametrize("folder", sorted(NAME_DIFFERS))
def test_name_differing_from_folder_is_a_warning(folder: str) -> None:
    skill = load_skill(CORPUS / folder / "SKILL.md")
    assert skill.available
    assert any("differs from its folder" in w for w in skill.warnings)


def test_vendor_blocks_and_aliases_are_read() -> None:
    def get(folder: str):
        return load_skill(CORPUS / folder / "SKILL.md")

    assert get("nanobot/github").requirements.bins == ("gh",)
    assert get("nanobot/github").emoji == "🐙"
    assert get("openclaw-clawdbot-era/himalaya").emoji == "📧"  # metadata.clawdbot
    clawdis = get("openclaw-clawdis-era/clawdis-cron")  # metadata.clawdis
    assert clawdis.emoji == "⏰"
    assert clawdis.always
    assert get("openclaw/1password").requirements.bins == ("op",)  # next-line JSON5 flow
    assert get("openclaw/coding-agent").requirements.any_bins[0] == "claude"
    assert get("clawhub/hippocampus").requirements.bins == ("python3", "jq")  # block YAML
    assert get("clawhub/dokploy").requirements.bins == ("curl", "jq")  # metadata.clawdhub
    assert get("clawhub/timesheet").requirements.bins == ("timesheet",)  # metadata.requires
    habit = get("clawhub/habit-flow")  # moltbot + clawdbot merged
    assert habit.emoji == "🎯"
    assert habit.requirements.bins == ("node", "npm")
    assert habit.version == "1.4.0"
    assert get("nanobot/tmux").requirements.os == ("darwin", "linux")
    assert get("clawhub/clean-code").allowed_tools == ("Read", "Write", "Edit")
    assert get("clawhub/clean-code").version == "2.0"
    assert get("clawhub/planning-with-files").allowed_tools[0] == "Read"
    assert get("openclaw/discord").allowed_tools == ("message",)
    assert not get("openclaw-clawhub-repo/sentry-fix-issues").model_invocable
    assert not get("openclaw/acp-router").user_invocable
    assert get("clawhub/ez-cronjob").category == "troubleshooting"
    assert get("openclaw-moltbot-era/nano-banana-pro").primary_env == "GEMINI_API_KEY"
    assert get("openclaw-clawdbot-era/bird").install[0].package == "steipete/tap/bird"
    assert get("openclaw/feishu-doc").description.startswith("Feishu document")
    assert "\n" not in get("openclaw/feishu-doc").description.strip()
    crlf = get("clawhub/antigravity-image-gen")
    assert crlf.emoji == "🎨"
    assert "\r" not in crlf.body


def test_loading_the_corpus_as_one_root_reports_name_clashes() -> None:
    result = load_roots([CORPUS])
    assert "github" in result.skills
    losers = {(s.name, str(s.source.parent.relative_to(CORPUS))) for s, _ in result.shadowed}
    assert ("github", "nanobot-history/github") in losers  # nanobot/ sorts first and wins
    assert len(result.skills) + len(result.shadowed) == 76
