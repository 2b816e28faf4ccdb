"""``nexflow.config.edit``: dotted changes merged into the raw YAML, validated whole by the
start-up loader before the file is replaced; secrets masked in what is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nexflow.config.edit import MASK, ConfigFile, masked, merge, needs_restart
from nexflow.config.errors import ConfigError

ENV = {"NEXFLOW_HOME": "/tmp/nexflow-edit-test-home"}


def write(tmp_path: Path, data: dict[str, object]) -> ConfigFile:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return ConfigFile(path, {**ENV, "MY_TOKEN": "x" * 20})


def test_a_valid_change_is_written_and_other_keys_kept(tmp_path: Path) -> None:
    source = write(tmp_path, {"web": {"token": "${MY_TOKEN}"}, "agent": {"max_steps": 4}})
    config = source.apply({"budgets.per_user_daily_tokens": 5000, "agent.history_messages": 10})
    assert config.budgets.per_user_daily_tokens == 5000
    raw = source.raw()
    assert raw["web"]["token"] == "${MY_TOKEN}"  # references stay references
    assert raw["agent"] == {"max_steps": 4, "history_messages": 10}
    assert source.path is not None and source.path.stat().st_mode & 0o777 == 0o600


def test_a_bad_value_is_refused_with_the_loaders_message_and_the_file_untouched(
    tmp_path: Path,
) -> None:
    source = write(tmp_path, {"agent": {"max_steps": 4}})
    assert source.path is not None
    before = source.path.read_text()
    with pytest.raises(ConfigError) as caught:
        source.apply({"agent.max_steps": 500})
    assert caught.value.problems[0].path == "agent.max_steps"
    assert "less than or equal to 64" in caught.value.problems[0].message
    assert str(source.path) in caught.value.render()
    assert source.path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.yml"]  # no temporary left


def test_unknown_keys_get_the_loaders_suggestion(tmp_path: Path) -> None:
    source = write(tmp_path, {})
    with pytest.raises(ConfigError) as caught:
        source.apply({"budgets.per_user_daly_tokens": 5})
    problem = caught.value.problems[0]
    assert (problem.message, problem.hint) == (
        "unknown option",
        "did you mean 'per_user_daily_tokens'?",
    )


def test_none_removes_a_key_and_bad_paths_are_refused() -> None:
    assert merge({"a": {"b": 1, "c": 2}}, {"a.b": None}) == {"a": {"c": 2}}
    assert merge({}, {"x.y": None}) == {}
    with pytest.raises(ConfigError):
        merge({"a": 1}, {"a.b": 2})
    with pytest.raises(ConfigError):
        merge({}, {"a..b": 2})


def test_secrets_are_masked_and_reported(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        {
            "web": {"token": "t" * 20, "users": {"carol": "c" * 20}},
            "llm": {"models": {"main": {"model": "openai/x", "api_key": "sk-123"}}},
            "connectors": {"telegram": {"bot_token": "123:abc", "mode": "polling"}},
            "budgets": {"per_user_daily_tokens": 10},
        },
    )
    shown, secrets = masked(source.load())
    text = repr(shown)
    for secret in ("t" * 20, "c" * 20, "sk-123", "123:abc"):
        assert secret not in text
    assert shown["web"]["token"] == MASK
    assert shown["connectors"]["telegram"] == {"bot_token": MASK, "mode": "polling"}
    assert shown["budgets"]["per_user_daily_tokens"] == 10  # "tokens" is not a secret
    assert secrets["web.token"] is True
    assert secrets["llm.models.main.api_key"] is True
    assert secrets["web.users.carol"] is True


def test_unset_secrets_say_so(tmp_path: Path) -> None:
    _, secrets = masked(write(tmp_path, {}).load())
    assert secrets["web.token"] is False


def test_only_logging_applies_without_restart() -> None:
    assert needs_restart(["logging.level", "budgets.per_user_daily_tokens"]) == [
        "budgets.per_user_daily_tokens"
    ]


def test_without_a_file_nothing_is_written() -> None:
    with pytest.raises(ConfigError) as caught:
        ConfigFile(None, ENV).apply({"agent.max_steps": 3})
    assert "without a configuration file" in caught.value.render()
