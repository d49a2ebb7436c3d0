"""Config: file < RLM_* environment < flags, validated, errors naming the key and where."""

from __future__ import annotations

from pathlib import Path

import pytest
from rlm_research.graph.config import ConfigError, load_config
from rlm_research.graph.settings import Settings


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch):
    """No RLM_* variables, no user config, and a fresh working folder."""
    import os

    for key in list(os.environ):
        if key.startswith("RLM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def error_of(**kw) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(**kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_without_any_config(clean_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-set-but-not-chosen")
    loaded = load_config({})
    assert loaded.file is None
    assert loaded.settings.model == "local"  # a key alone never switches to a paid model
    assert loaded.settings.max_depth == Settings().max_depth
    assert loaded.settings.data_dir.endswith("xdg-data/rlm-research")


def test_precedence_file_then_env_then_flags(clean_env, monkeypatch):
    (clean_env / "rlm-research.yaml").write_text(
        "model: openai:gpt-4o-mini\nmax_depth: 2\nmax_turns: 5\ntemperature: 0.3\n"
    )
    monkeypatch.setenv("RLM_MAX_DEPTH", "3")
    monkeypatch.setenv("RLM_MAX_TURNS", "7")
    loaded = load_config({"max_turns": 9, "model": None})
    s = loaded.settings
    assert loaded.file == clean_env / "rlm-research.yaml"
    assert s.model == "openai:gpt-4o-mini"  # file (flag not given)
    assert s.temperature == 0.3  # file
    assert s.max_depth == 3  # env over file
    assert s.max_turns == 9  # flag over env


def test_user_config_folder_is_used_when_no_local_file(clean_env, tmp_path: Path):
    user = tmp_path / "xdg" / "rlm-research"
    user.mkdir(parents=True)
    (user / "config.yaml").write_text("sub_model: local:0.5b\ndata_dir: runs-here\n")
    loaded = load_config({})
    assert loaded.file == user / "config.yaml"
    assert loaded.settings.sub_model == "local:0.5b"
    assert loaded.settings.data_dir == str(user / "runs-here")  # relative to the file
    (clean_env / "rlm-research.yaml").write_text("max_turns: 4\n")  # the local file wins
    loaded = load_config({})
    assert loaded.file == clean_env / "rlm-research.yaml"
    assert loaded.settings.sub_model is None


def test_explicit_config_file_and_cli_only_keys(clean_env, tmp_path: Path):
    f = tmp_path / "custom.yaml"
    f.write_text("max-source-bytes: 1234\nurl_timeout: 4\n")
    loaded = load_config({}, config_file=f)
    assert loaded.max_source_bytes == 1234 and loaded.url_timeout == 4.0
    assert "missing.yaml" in error_of(config_file=tmp_path / "missing.yaml")


def test_unknown_key_names_key_and_file(clean_env):
    (clean_env / "rlm-research.yaml").write_text("max_deph: 2\n")
    msg = error_of()
    assert "rlm-research.yaml" in msg and "max_deph" in msg and "unknown key" in msg


def test_bad_value_names_key_and_file(clean_env):
    (clean_env / "rlm-research.yaml").write_text("max_depth: deep\n")
    msg = error_of()
    assert "rlm-research.yaml" in msg and "max_depth" in msg and "'deep'" in msg
    (clean_env / "rlm-research.yaml").write_text("max_turns: 0\n")
    assert "max_turns" in error_of()


def test_bad_yaml_and_wrong_shape(clean_env):
    (clean_env / "rlm-research.yaml").write_text("model: [unclosed\n")
    msg = error_of()
    assert "rlm-research.yaml" in msg and "not valid YAML" in msg and "line" in msg
    (clean_env / "rlm-research.yaml").write_text("- a\n- b\n")
    assert "mapping" in error_of()


def test_unknown_model_spec_is_a_config_error(clean_env, monkeypatch):
    monkeypatch.setenv("RLM_MODEL", "gpt4")
    msg = error_of()
    assert "RLM_MODEL" in msg and "unknown model spec" in msg
    monkeypatch.delenv("RLM_MODEL")
    assert "--model" in error_of(flags={"model": "nonsense"})


def test_bad_env_value_names_the_variable(clean_env, monkeypatch):
    monkeypatch.setenv("RLM_MAX_TURNS", "many")
    msg = error_of()
    assert "RLM_MAX_TURNS" in msg and "'many'" in msg


def test_other_rlm_variables_are_not_settings(clean_env, monkeypatch):
    monkeypatch.setenv("RLM_API_KEY", "secret")
    monkeypatch.setenv("RLM_MODEL_CACHE", "/tmp/x")
    monkeypatch.setenv("RLM_MODEL", "")  # empty means unset
    assert load_config({}).settings.model == "local"


def test_api_keys_are_refused_in_files(clean_env):
    (clean_env / "rlm-research.yaml").write_text("api_key: sk-123\n")
    msg = error_of()
    assert "api_key" in msg and "RLM_API_KEY" in msg and "sk-123" not in msg


def test_bad_flag_values(clean_env):
    assert "--max-depth" in error_of(flags={"max_depth": -1})
    assert "--base-url" in error_of(flags={"base_url": "localhost:8000"})


def test_every_run_setting_is_a_config_key(clean_env, monkeypatch):
    from dataclasses import fields

    from rlm_research.graph.config import Config

    assert {f.name for f in fields(Settings)} <= set(Config.key_names())
    (clean_env / "rlm-research.yaml").write_text("web_provider: brave\n")
    monkeypatch.setenv("RLM_WEB", "true")
    s = load_config({}).settings
    assert s.web is True and s.web_provider == "brave"
    monkeypatch.setenv("RLM_WEB", "maybe")
    assert "RLM_WEB" in error_of()
