"""plan → commit / discard, the lock, verify, remove, update, and tampering at load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexflow.skills import SkillRegistry
from nexflow.skills.install import Installer, InstallError, NotApproved, NotInstalled
from nexflow.skills.install.installer import finding_keys


def quarantine_is_empty(home: Path) -> bool:
    q = home / "quarantine" / "skills"
    return not q.exists() or not any(q.iterdir())


def test_plan_installs_nothing(installer: Installer, home: Path, fixture_copy) -> None:  # type: ignore[no-untyped-def]
    plan = installer.plan(str(fixture_copy("clean")))
    assert plan.name == "word-count"
    assert plan.version == "1.2.0"
    assert plan.kind == "folder"
    assert not plan.flagged and plan.findings == ()
    assert plan.staged.is_relative_to(home / "quarantine")
    assert (plan.staged / "SKILL.md").is_file()
    assert not (home / "skills").exists() and not (home / "skills.lock").exists()
    installer.discard(plan)
    assert quarantine_is_empty(home)


def test_clean_skill_installs_and_its_lock_verifies(
    installer: Installer,
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    source = fixture_copy("clean")
    done = installer.commit(installer.plan(str(source)))
    assert done.path == home / "skills" / "word-count"
    assert (done.path / "scripts" / "count.py").is_file()
    lock = json.loads((home / "skills.lock").read_text())
    entry = lock["skills"]["word-count"]
    assert entry["source"] == str(source)
    assert entry["version"] == "1.2.0"
    assert entry["folder"] == "skills/word-count"
    assert set(entry["files"]) == {"SKILL.md", "scripts/count.py"}
    assert all(len(h) == 64 for h in entry["files"].values())
    assert entry["installed_at"].endswith("+00:00")
    assert installer.verify() == {"word-count": []}
    assert quarantine_is_empty(home)
    registry = SkillRegistry([home / "skills"])
    registry.reload()
    assert registry.get("word-count").available


@pytest.mark.parametrize(
    "fixture",
    ["pipe-to-shell", "steal-secrets", "hidden-network", "injection", "obfuscated"],
)
def test_hostile_skill_is_not_installed_without_approval(
    installer: Installer,
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
    fixture: str,
) -> None:
    plan = installer.plan(str(fixture_copy(fixture)))
    assert plan.flagged
    with pytest.raises(NotApproved, match="not installed without explicit approval"):
        installer.commit(plan)
    assert not (home / "skills").exists()
    assert not (home / "skills.lock").exists()
    installer.discard(plan)
    assert quarantine_is_empty(home)


def test_approved_flagged_skill_records_what_was_approved(
    installer: Installer,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    plan = installer.plan(str(fixture_copy("hidden-network")))
    installer.commit(plan, approved=True)
    entry = installer.lock().entries["note-sorter"]
    assert entry.approved_findings == ("undeclared-network@scripts/sort.py",)
    assert entry.permissions == ("filesystem",)


def test_tampering_is_detected_by_verify_and_at_load(
    installer: Installer,
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    done = installer.commit(installer.plan(str(fixture_copy("clean"))))
    script = done.path / "scripts" / "count.py"
    script.write_text(script.read_text() + "import urllib.request\n")
    (done.path / "extra.sh").write_text("echo hi\n")
    report = installer.verify("word-count")["word-count"]
    assert report[0].startswith("file scripts/count.py changed since install (sha256 ")
    assert report[1] == "file extra.sh was added since install"
    registry = SkillRegistry([home / "skills"])
    registry.reload()
    skill = registry.get("word-count")
    assert not skill.available
    assert skill.reason is not None
    assert "file scripts/count.py changed since install (sha256" in skill.reason
    assert "(and 1 more change(s))" in skill.reason
    # Putting the file back makes it load again.
    script.write_text((fixture_copy("clean", "again") / "scripts" / "count.py").read_text())
    (done.path / "extra.sh").unlink()
    registry.reload()
    assert registry.get("word-count").available


def test_removed_file_is_reported(installer: Installer, fixture_copy) -> None:  # type: ignore[no-untyped-def]
    done = installer.commit(installer.plan(str(fixture_copy("clean"))))
    (done.path / "scripts" / "count.py").unlink()
    assert installer.verify() == {"word-count": ["file scripts/count.py was removed since install"]}


def test_an_unlocked_folder_is_never_overwritten(
    installer: Installer,
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    mine = home / "skills" / "word-count"
    mine.mkdir(parents=True)
    (mine / "SKILL.md").write_text("my own\n")
    plan = installer.plan(str(fixture_copy("clean")))
    with pytest.raises(InstallError, match="was not installed by Nexflow"):
        installer.commit(plan)
    installer.discard(plan)
    assert (mine / "SKILL.md").read_text() == "my own\n"


def test_remove(installer: Installer, home: Path, fixture_copy) -> None:  # type: ignore[no-untyped-def]
    installer.commit(installer.plan(str(fixture_copy("clean"))))
    assert installer.remove("word-count") == home / "skills" / "word-count"
    assert not (home / "skills" / "word-count").exists()
    assert installer.lock().entries == {}
    with pytest.raises(NotInstalled, match="no installed skill named 'word-count'"):
        installer.remove("word-count")


def test_update_replans_from_the_recorded_source(
    installer: Installer,
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    source = fixture_copy("clean")
    installer.commit(installer.plan(str(source)))
    skill_md = source / "SKILL.md"
    skill_md.write_text(skill_md.read_text().replace("1.2.0", "1.3.0"))
    (source / "scripts" / "count.py").write_text("import requests\n")
    plan, entry = installer.plan_update("word-count")
    assert entry.version == "1.2.0" and plan.version == "1.3.0"
    assert finding_keys(plan.findings) == ("undeclared-network@scripts/count.py",)
    with pytest.raises(NotApproved):
        installer.commit(plan)
    installer.commit(plan, approved=True)
    assert installer.lock().entries["word-count"].version == "1.3.0"
    assert (home / "skills" / "word-count" / "scripts" / "count.py").read_text() == (
        "import requests\n"
    )
    assert installer.verify() == {"word-count": []}


def test_a_skill_that_does_not_load_is_refused_with_its_line(
    installer: Installer, home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "SKILL.md").write_text("---\ndescription: d\n---\nbody\n")
    with pytest.raises(
        InstallError, match=r"does not load: .*SKILL\.md: frontmatter has no 'name'"
    ):
        installer.plan(str(bad))
    assert quarantine_is_empty(home)


def test_lenient_name_is_kept_and_the_folder_is_safe(installer: Installer, tmp_path: Path) -> None:
    src = tmp_path / "Weird"
    src.mkdir()
    (src / "SKILL.md").write_text("---\nname: My Notes Helper\ndescription: Helps.\n---\nx\n")
    plan = installer.plan(str(src))
    assert plan.name == "My Notes Helper"
    assert plan.folder == "my-notes-helper"
    assert any("not lowercase" in w for w in plan.load_warnings)
    done = installer.commit(plan)
    assert done.path.name == "my-notes-helper"
    registry = SkillRegistry([done.path.parent])
    registry.reload()
    assert registry.get("My Notes Helper").available


def test_no_source_is_a_clear_error(installer: Installer) -> None:
    with pytest.raises(InstallError, match="no such folder or archive: /nonexistent/x"):
        installer.plan("/nonexistent/x")
    with pytest.raises(InstallError, match="give an index"):
        installer.plan("some-slug")


def test_a_folder_with_several_skills_asks_which(installer: Installer, tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / "pack" / name).mkdir(parents=True)
        (tmp_path / "pack" / name / "SKILL.md").write_text(
            f"---\nname: {name}\ndescription: d\n---\n"
        )
    with pytest.raises(InstallError, match=r"holds 2 skills \(one, two\); pick one with .*#"):
        installer.plan(str(tmp_path / "pack"))
    plan = installer.plan(f"{tmp_path / 'pack'}#two")
    assert plan.name == "two"
    installer.discard(plan)
