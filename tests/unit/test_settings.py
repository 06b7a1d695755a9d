from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings
from assistant.flags import add_settings_flags, overrides_from_args


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    return parser.parse_args(list(argv))


def test_defaults_have_three_shipped_tiers() -> None:
    settings = Settings.load()
    assert set(settings.models) == {"small", "large", "tiny"}
    assert all(spec.kind == "shipped" for spec in settings.models.values())
    assert settings.models["large"].price_per_million_tokens > settings.models["small"].price_per_million_tokens


def test_precedence_defaults_toml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.toml"
    config.write_text("[llama]\nn_ctx = 1024\nn_batch = 64\nseed = 7\n")
    assert Settings.load().llama.n_ctx == 4096  # default
    settings = Settings.load(config)
    assert (settings.llama.n_ctx, settings.llama.n_batch, settings.llama.seed) == (1024, 64, 7)  # toml
    monkeypatch.setenv("ASSISTANT_LLAMA__N_CTX", "2048")
    monkeypatch.setenv("ASSISTANT_LLAMA__N_BATCH", "128")
    settings = Settings.load(config)
    assert (settings.llama.n_ctx, settings.llama.n_batch, settings.llama.seed) == (2048, 128, 7)  # env > toml
    args = _parse("--llama-n-ctx", "8192")
    settings = Settings.load(config, overrides_from_args(args))
    assert (settings.llama.n_ctx, settings.llama.n_batch, settings.llama.seed) == (8192, 128, 7)  # flag > env


def test_default_config_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / "assistant.toml").write_text("auto_fetch = false\n")
    assert Settings.load().auto_fetch is False


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("auto_fetch = false\n")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    assert Settings.load().auto_fetch is False


def test_tier_override_keeps_other_tiers_and_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.toml"
    config.write_text('[models.large]\nsource = "http://127.0.0.1:9999/v1"\nremote_model = "big"\n')
    monkeypatch.setenv("ASSISTANT_MODELS__LARGE__API_KEY", "secret")
    settings = Settings.load(config)
    large = settings.models["large"]
    assert large.kind == "openai"
    assert large.remote_model == "big"
    assert large.api_key is not None and large.api_key.get_secret_value() == "secret"
    assert large.price_per_million_tokens == 0.15  # default kept
    assert settings.models["small"].kind == "shipped"


def test_new_tier_and_tier_flags(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    args = _parse("--small", str(gguf), "--set", "models.huge.source=http://127.0.0.1:1/v1",
                  "--set", "models.huge.parameters=70000000000")
    settings = Settings.load(None, overrides_from_args(args))
    assert settings.models["small"].kind == "gguf"
    assert settings.models["huge"].kind == "openai"
    assert settings.models["huge"].parameters == 70_000_000_000


def test_unknown_alias_error_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load().model_spec("medium")
    assert "large, small, tiny" in caught.value.hint


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml")


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LLAMA__N_CTX", "12")
    with pytest.raises(ConfigError, match=r"llama\.n_ctx"):
        Settings.load()


def test_bad_set_flag() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        overrides_from_args(_parse("--set", "novalue"))


def test_boolean_flag() -> None:
    assert Settings.load(None, overrides_from_args(_parse("--no-auto-fetch"))).auto_fetch is False
