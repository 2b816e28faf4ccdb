import os
import stat
from pathlib import Path

import pytest

from nexflow.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def problems(exc: ConfigError) -> dict[str, tuple[str, str]]:
    return {p.path: (p.message, p.hint) for p in exc.problems}


def test_example_config_loads_as_shipped() -> None:
    config = load_config(REPO / "config.example.yml", {})
    assert config.web.host == "127.0.0.1"
    assert config.web.port == 8080


def test_defaults_without_a_file() -> None:
    config = load_config(None, {"NEXFLOW_HOME": "/tmp/nx-defaults"})
    assert config.database_path == Path("/tmp/nx-defaults/nexflow.db")
    assert config.workspace_dir == Path("/tmp/nx-defaults/workspace")
    assert config.llm.models == {}


def test_interpolation_with_default_and_from_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'web:\n  port: "${PORT:-9001}"\nllm:\n  models:\n'
        '    default: {model: "openai/x", api_key: "${KEY}"}\n',
    )
    config = load_config(path, {"KEY": "sk-123"})
    assert config.web.port == 9001
    key = config.llm.models["default"].api_key
    assert key is not None and key.get_secret_value() == "sk-123"
    assert "sk-123" not in repr(config)


def test_missing_variable_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'llm:\n  models:\n    main: {model: "openai/x", api_key: "${NOPE}"}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert "llm.models.main.api_key" in problems(info.value)
    assert "NOPE" in info.value.render()


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "web:\n  prot: 80\n"), {})
    message, hint = problems(info.value)["web.prot"]
    assert message == "unknown option"
    assert "'port'" in hint


def test_wrong_type_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "web:\n  port: eighty\n"), {})
    assert problems(info.value)["web.port"][1] == "write a whole number"


def test_route_to_missing_profile(tmp_path: Path) -> None:
    text = 'llm:\n  models:\n    cheap: {model: "openai/a"}\n  routes: {plan: strong}\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), {})
    assert "strong" in info.value.render()


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "web:\n  port: [1,\n  host: x\n"), {})
    assert "line" in info.value.render()


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "- a\n- b\n"), {})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yml", {})
    assert "not found" in info.value.render()


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "web:\n  port: 8000\nbus:\n  concurrency: 4\n")
    config = load_config(path, {"NEXFLOW_WEB__PORT": "8123"})
    assert config.web.port == 8123
    assert config.bus.concurrency == 4


def test_environment_is_validated_too() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"NEXFLOW_WEB__PORT": "high"})
    assert "web.port" in problems(info.value)


def test_llm_shortcut_variables_define_one_profile() -> None:
    config = load_config(
        None,
        {
            "NEXFLOW_LLM_MODEL": "openai/gpt-4o-mini",
            "NEXFLOW_LLM_API_BASE": "http://127.0.0.1:1/v1",
            "NEXFLOW_LLM_API_KEY": "k",
            "NEXFLOW_GATEWAY_TOKEN": "tok",
        },
    )
    profile = config.llm.models["default"]
    assert profile.model == "openai/gpt-4o-mini"
    assert profile.api_base == "http://127.0.0.1:1/v1"
    assert config.web.token is not None and config.web.token.get_secret_value() == "tok"


def test_secrets_file_feeds_interpolation(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# keys\nexport OPENAI_API_KEY='sk-file'\n")
    os.chmod(secrets, 0o600)
    path = write(
        tmp_path,
        f'secrets_file: "{secrets}"\nllm:\n  models:\n'
        '    default: {model: "openai/x", api_key: "${OPENAI_API_KEY}"}\n',
    )
    config = load_config(path, {})
    key = config.llm.models["default"].api_key
    assert key is not None and key.get_secret_value() == "sk-file"


def test_secrets_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("A=b\n")
    os.chmod(secrets, 0o644)
    with pytest.raises(ConfigError) as info:
        load_config(None, {"NEXFLOW_SECRETS_FILE": str(secrets)})
    rendered = info.value.render()
    assert "chmod 600" in rendered
    assert stat.filemode(0o100644) in rendered


def test_secrets_file_bad_line(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("just-a-value\n")
    os.chmod(secrets, 0o600)
    with pytest.raises(ConfigError) as info:
        load_config(None, {"NEXFLOW_SECRETS_FILE": str(secrets)})
    assert "line 1" in problems(info.value)
