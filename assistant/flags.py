"""Command-line flags generated from the settings fields: one flag per scalar setting, tiers, ``--set``."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings
from models.settings import default_model_tiers

_SCALAR_TYPES = (int, float, str, Path, bool)


def _flag_type(annotation: Any) -> tuple[type, tuple[str, ...] | None] | None:
    """The argparse type (and choices) of a field: scalars, ``Literal`` strings and ``X | None``; else None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal and all(isinstance(arg, str) for arg in args):
        return str, tuple(args)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _flag_type(next(arg for arg in args if arg is not type(None)))
    if isinstance(annotation, type) and issubclass(annotation, _SCALAR_TYPES):
        return annotation, None
    return None


FlagField = tuple[tuple[str, ...], type, tuple[str, ...] | None, str]


def _flag_fields() -> list[FlagField]:
    """(dotted path, type, choices, help) for every scalar setting that gets its own flag."""
    fields: list[FlagField] = []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub_name, sub_info in annotation.model_fields.items():
                kind = _flag_type(sub_info.annotation)
                if kind is not None:
                    fields.append(((name, sub_name), kind[0], kind[1], _argparse_text(sub_info.description)))
        elif (kind := _flag_type(annotation)) is not None:
            fields.append(((name,), kind[0], kind[1], _argparse_text(info.description)))
    return fields


def _argparse_text(description: str | None) -> str:
    """A field's description as argparse help (which formats it with %: a literal percent sign is doubled)."""
    return (description or "").replace("%", "%%")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Add --config, one flag per scalar setting, --small/--large/--tiny SOURCE and --set KEY=VALUE."""
    group = parser.add_argument_group("settings (override the TOML file and ASSISTANT_* variables)")
    group.add_argument("--config", type=Path, default=None, help="TOML settings file.")
    for path, field_type, choices, help_text in _flag_fields():
        flag = "--" + "-".join(path).replace("_", "-")
        dest = "setting__" + "__".join(path)
        if field_type is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=field_type, choices=choices, default=None, help=help_text,
                               metavar="{" + ",".join(choices) + "}" if choices else path[-1].upper())
    for alias in default_model_tiers():
        group.add_argument(f"--{alias}", dest=f"tier__{alias}", metavar="SOURCE", default=None,
                           help=f"source of the {alias} tier (shipped:NAME, a .gguf path or an http URL)")
    group.add_argument("--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
                       help="any setting by dotted name, e.g. models.large.price_per_million_tokens=0.2")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Turn parsed flags into the nested override dict that :meth:`Settings.load` takes."""
    overrides: dict[str, Any] = {}
    for key, value in vars(args).items():
        if value is None:
            continue
        if key.startswith("setting__"):
            _set_dotted(overrides, key.removeprefix("setting__").split("__"), value)
        elif key.startswith("tier__"):
            _set_dotted(overrides, ["models", key.removeprefix("tier__"), "source"], value)
    for item in getattr(args, "set_values", []) or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r} is not KEY=VALUE", "write e.g. --set llama.n_ctx=8192")
        _set_dotted(overrides, name.strip().split("."), value)
    return overrides


def _set_dotted(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
