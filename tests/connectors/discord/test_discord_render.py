"""Splitting, button ids and config, without a client."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.discord.config import DiscordConfig
from connectors.discord.render import parse_custom_id, split_text
from nexflow.config.errors import ConfigError

pieces = st.text(st.characters(blacklist_categories=["Cs"]), max_size=2500) | st.sampled_from(
    [" " * 2500, "\n" * 2100, "x" * 4100, "```", "```py"]
)


@given(st.lists(pieces, max_size=8))
def test_parts_fit_and_keep_every_visible_character(chunks: list[str]) -> None:
    text = "\n".join(chunks)
    parts = split_text(text)
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.strip() for p in parts)
    visible = "".join("".join(parts).split())
    if "```" not in text:  # only fences are ever added
        assert visible == "".join(text.split())


def test_short_text_is_one_part_and_blank_is_none() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text(" \n ") == []


def test_code_block_cut_in_two_is_closed_and_reopened() -> None:
    body = "\n".join(f"print({i})" + " " * 40 for i in range(80))
    parts = split_text(f"Here:\n```python\n{body}\n```\ndone")
    assert len(parts) == 3
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[1].startswith("```python\n")
    assert parts[-1].endswith("done")


def test_custom_ids() -> None:
    assert parse_custom_id("nxf:confirm:abcd1234") == "/confirm abcd1234"
    assert parse_custom_id("nxf:cancel:abcd1234") == "/cancel abcd1234"
    assert parse_custom_id("nxf:press:refresh") == "/press refresh"
    assert parse_custom_id("nxf:drop:x") is None
    assert parse_custom_id("someone-else") is None


def test_config_errors_name_the_key() -> None:
    config = DiscordConfig.from_section({"bot_token": "t", "guild_id": 123, "channels": {"g": 7}})
    assert (config.guild_id, config.channels) == ("123", {"g": "7"})  # YAML ints become ids
    with pytest.raises(ConfigError) as caught:
        DiscordConfig.from_section({"bot_token": "t", "guild_id": "general", "colour": 1})
    paths = {p.path for p in caught.value.problems}
    assert paths == {"connectors.discord.guild_id", "connectors.discord.colour"}
