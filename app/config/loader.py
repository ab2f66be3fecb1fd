"""Load relay.yaml: interpolate ``${NAME}`` from the environment, validate, and report
every problem as ``file: path: reason`` — never a traceback, never a secret's value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from app.config.models import RelayConfig
from app.errors import ConfigError

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def environment_with_dotenv(dotenv_path: str | Path = ".env") -> dict[str, str]:
    """The process environment over the values of ``.env`` (the environment wins)."""
    values = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    values.update(os.environ)
    return values


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> RelayConfig:
    """Parse and validate a relay.yaml; raise ConfigError listing every problem."""
    file = Path(path)
    env = environment_with_dotenv() if environ is None else environ
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{file}: not UTF-8 text"]) from None
    return parse_config(text, env, name=str(file))


def parse_config(text: str, environ: Mapping[str, str], *, name: str = "relay.yaml") -> RelayConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}: {_describe_yaml_error(exc)}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{name}: the top level must be a mapping with sources and routes"])
    problems: list[str] = []
    variables: dict[tuple[Any, ...], list[str]] = {}  # path -> the ${NAME}s in its value
    interpolated = _interpolate(raw, environ, (), problems, variables)
    if problems:
        raise ConfigError([f"{name}: {p}" for p in problems])
    try:
        config = RelayConfig.model_validate(interpolated)
    except ValidationError as exc:
        lines = _describe_validation(exc, variables, environ)
        raise ConfigError([f"{name}: {line}" for line in lines]) from None
    if short := _short_secrets(config, variables, environ):
        raise ConfigError([f"{name}: {line}" for line in short])
    return config


# A sender's secret shorter than this, read from the environment, is a truncated paste or
# a placeholder (secrets the senders generate are far longer; init makes 32 characters).
MIN_SECRET_LENGTH = 8


def _short_secrets(
    config: RelayConfig, variables: dict[tuple[Any, ...], list[str]], environ: Mapping[str, str]
) -> list[str]:
    problems = []
    for source_name, source in config.sources.items():
        path = ("sources", source_name, "verify", "secret")
        secret = source.verify.secret
        if secret is None or path not in variables or len(secret) >= MIN_SECRET_LENGTH:
            continue
        named = " and ".join(variables[path])
        problems.append(
            f"{format_path(path)}: {named} is {len(secret)} character"
            f"{'s' if len(secret) != 1 else ''} long: too short for "
            f"a secret (at least {MIN_SECRET_LENGTH}; is the whole value there?)"
        )
    return problems


def _interpolate(
    value: Any,
    environ: Mapping[str, str],
    path: tuple[Any, ...],
    problems: list[str],
    variables: dict[tuple[Any, ...], list[str]],
) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            variable = match.group(1)
            variables.setdefault(path, []).append(variable)
            if variable not in environ:
                problems.append(f"{format_path(path)}: environment variable {variable} is not set")
                return ""
            return environ[variable]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, environ, (*path, k), problems, variables) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, environ, (*path, i), problems, variables) for i, v in enumerate(value)
        ]
    return value


def format_path(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part)
            if not name.isprintable() or not name:  # a line break must not split the message
                name = repr(name)
            out += f".{name}" if out else name
    return out or "(top level)"


def _describe_validation(
    exc: ValidationError,
    variables: dict[tuple[Any, ...], list[str]],
    environ: Mapping[str, str],
) -> list[str]:
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        location = tuple(error["loc"])
        message += _from_variables(location, variables, environ)
        lines.append(f"{format_path(location)}: {message}" if location else message)
    return lines


def _from_variables(
    location: tuple[Any, ...],
    variables: dict[tuple[Any, ...], list[str]],
    environ: Mapping[str, str],
) -> str:
    """Which environment variables the values at or under ``location`` came from, so a
    bad secret is named by its variable (never shown)."""
    named = [
        f"{variable} is empty" if not environ.get(variable) else f"from ${{{variable}}}"
        for path, names in variables.items()
        if path[: len(location)] == location
        for variable in names
    ]
    return f" ({'; '.join(dict.fromkeys(named))})" if named else ""


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)
