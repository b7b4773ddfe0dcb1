"""Settings precedence (environment > the HEARTH_CONFIG file > defaults) and typos in the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hearth.config import Settings, SettingsFileError, load_settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a TOML settings file and point HEARTH_CONFIG at it (no HEARTH_* variables leak in)."""
    for name in [n for n in os.environ if n.startswith("HEARTH_")]:
        monkeypatch.delenv(name)

    def write(text: str) -> Path:
        path = tmp_path / "hearth.toml"
        path.write_text(text)
        monkeypatch.setenv("HEARTH_CONFIG", str(path))
        return path

    return write


def test_an_unknown_key_is_an_error_naming_it_and_the_valid_settings(config_file):
    path = config_file("worker = 16\nlog_level = 'DEBUG'\n")
    with pytest.raises(SettingsFileError) as raised:
        load_settings()
    message = str(raised.value)
    assert str(path) in message
    assert "'worker' (did you mean 'workers'?)" in message
    assert "valid settings are:" in message and "workers" in message and "operation_timeout_seconds" in message
    assert "log_level'" not in message.split("valid settings")[0]  # only the unknown key is blamed


def test_several_unknown_keys_are_all_named(config_file):
    config_file("wrokers = 2\ncompletely_unrelated = true\n")
    with pytest.raises(SettingsFileError, match=r"'wrokers' \(did you mean 'workers'\?\), 'completely_unrelated'"):
        Settings()


def test_the_file_overrides_the_defaults(config_file):
    config_file("workers = 16\nengine = 'orchestrator'\ntoken_cache_seconds = 5.5\n")
    settings = load_settings()
    assert settings.workers == 16
    assert settings.engine == "orchestrator"
    assert settings.token_cache_seconds == 5.5
    assert settings.api_port == Settings.model_fields["api_port"].default  # untouched settings keep defaults


def test_the_environment_overrides_the_file(config_file, monkeypatch):
    config_file("workers = 16\nengine = 'orchestrator'\n")
    monkeypatch.setenv("HEARTH_WORKERS", "3")
    settings = load_settings()
    assert settings.workers == 3
    assert settings.engine == "orchestrator"  # the file still supplies what the environment leaves out


def test_explicit_arguments_override_the_environment(config_file, monkeypatch):
    config_file("workers = 16\n")
    monkeypatch.setenv("HEARTH_WORKERS", "3")
    assert load_settings(workers=5).workers == 5


def test_a_bad_value_in_the_file_is_still_a_validation_error(config_file):
    config_file("workers = 0\n")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        load_settings()
