from pathlib import Path

import pytest
import yaml

from nexflow.importers.errors import ConfigPatchError
from nexflow.importers.yamlpatch import add_mapping

REPO = Path(__file__).resolve().parents[2]
TOKEN = {"bot_token": "${TELEGRAM_BOT_TOKEN}"}


def test_into_the_example_config_keeping_every_comment() -> None:
    text = (REPO / "config.example.yml").read_text(encoding="utf-8")
    new = add_mapping(text, ["connectors", "telegram"], TOKEN)
    new = add_mapping(
        new, ["security", "channels", "telegram"], {"policy": "allowlist", "allow": ["1"]}
    )
    data = yaml.safe_load(new)
    assert data["connectors"]["telegram"] == TOKEN
    assert data["security"]["channels"]["telegram"] == {"policy": "allowlist", "allow": ["1"]}
    old_comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    new_comments = [line for line in new.splitlines() if line.lstrip().startswith("#")]
    assert new_comments == old_comments


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "connectors: {}   # none yet\n",
        "web:\n  port: 8080\n",
        "connectors:\n    discord:\n        bot_token: x\n# trailing\nweb: {port: 1}\n",
        "connectors:\n",
    ],
)
def test_shapes(text: str) -> None:
    new = add_mapping(text, ["connectors", "telegram"], TOKEN)
    before = yaml.safe_load(text) or {}
    after = yaml.safe_load(new)
    assert after["connectors"]["telegram"] == TOKEN
    assert {k: v for k, v in after.items() if k != "connectors"} == {
        k: v for k, v in before.items() if k != "connectors"
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("connectors:\n  telegram:\n    bot_token: mine\n", "already exists"),
        ("connectors: {discord: {bot_token: x}}\n", "written inline"),
        ("- a list\n", "not a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(ConfigPatchError, match=reason):
        add_mapping(text, ["connectors", "telegram"], TOKEN)
