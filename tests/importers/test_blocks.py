import pytest

from nexflow.importers import blocks
from nexflow.importers.memory import mark_items, origin_mark
from nexflow.memory import notes


def test_upsert_adds_then_is_idempotent_then_updates_in_place() -> None:
    mine = "# My notes\n\n- keep me\n"
    text, change = blocks.upsert(mine, "openclaw:SOUL.md", "SOUL.md, imported", "Be kind.\n")
    assert change == "added" and text.startswith(mine)
    again, change = blocks.upsert(text, "openclaw:SOUL.md", "SOUL.md, imported", "Be kind.\n")
    assert (again, change) == (text, "unchanged")
    later = text + "\n- added by hand after the import\n"
    updated, change = blocks.upsert(later, "openclaw:SOUL.md", "SOUL.md, imported", "Be brief.")
    assert change == "updated"
    assert "Be brief." in updated and "Be kind." not in updated
    assert updated.startswith(mine) and updated.endswith("- added by hand after the import\n")
    assert updated.count("<!-- nexflow-import openclaw:SOUL.md") == 1


def test_sections_of_other_sources_are_separate() -> None:
    text, _ = blocks.upsert("", "openclaw:USER.md", "a", "from openclaw")
    text, change = blocks.upsert(text, "hermes:memories/USER.md", "b", "from hermes")
    assert change == "added"
    text, change = blocks.upsert(text, "openclaw:USER.md", "a", "changed")
    assert change == "updated" and "from hermes" in text and "from openclaw" not in text


def test_a_section_without_its_end_is_refused() -> None:
    text, _ = blocks.upsert("", "k", "t", "body")
    broken = text.replace("###### end of import", "end of import")
    with pytest.raises(blocks.BrokenSection, match="lost its end line"):
        blocks.upsert(broken, "k", "t", "new body")


def test_imported_memory_items_carry_their_origin_and_frames_are_not_items() -> None:
    source = (
        "# MEMORY.md\n\n## People\n- Bea lives in Porto. #family\n- Allergic to penicillin.\n"
        "  (since 2019)\n\nThe irrigation runs at 06:00\non the balcony.\n§\nHermes entry\n"
    )
    body = mark_items(source, origin_mark("openclaw"))
    text, _ = blocks.upsert("- my own fact\n", "openclaw:MEMORY.md", "MEMORY.md, imported", body)
    chunks = notes.parse(text)
    assert [c.text for c in chunks] == [
        "my own fact",
        "Bea lives in Porto. #family",
        "Allergic to penicillin.\n(since 2019)",
        "The irrigation runs at 06:00\non the balcony.",
        "Hermes entry",
    ]
    assert chunks[0].tainted == ()
    assert all(c.tainted == ("import:openclaw",) for c in chunks[1:])
    assert chunks[1].tags == ("family",)
