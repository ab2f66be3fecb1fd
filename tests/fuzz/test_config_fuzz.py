"""Hypothesis on relay.yaml loading: whatever the file holds, ``parse_config`` returns a
config or raises ``ConfigError`` whose every line starts with the file's name — never
another exception, never a traceback for the user."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config.loader import load_config, parse_config
from app.config.models import RelayConfig
from app.errors import ConfigError
from tests.conftest import CONFIG_YAML, SECRETS

NAME = "conf/relay.yaml"
VALID = yaml.safe_load(CONFIG_YAML)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words the config uses, so random documents hit real keys and values, not only noise.
WORDS = [
    "sources", "routes", "verify", "scheme", "secret", "header", "encoding", "prefix", "at",
    "event_type", "event_id", "methods", "allow_ips", "name", "source", "event", "when",
    "contact", "email", "given_name", "actions", "tags", "action_set", "sequence",
    "campaign", "remove_tags", "email_template", "goal", "integration", "call_name",
    "shopify", "hmac", "token", "none", "stripe", "standard", "hex", "base64", "GET",
    "POST", "body.email", "headers.x", "${SHOP_SECRET}", "${UNSET_VARIABLE}", "${", "*",
    "203.0.113.0/24", "not-an-ip", "body.[", "`1`", "custom_fields",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=10), st.integers(), st.booleans())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=30,
)


def assert_loads_or_explains(text: str) -> None:
    try:
        config = parse_config(text, SECRETS, name=NAME)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must say what is wrong"  # noqa: PT017 (parsing may succeed)
        for problem in exc.problems:
            assert problem.startswith(f"{NAME}: "), f"a problem without the file: {problem!r}"
        for line in str(exc).splitlines():  # what `relay check` prints, one line each
            assert line.startswith(f"{NAME}: "), f"a line without the file: {line!r}"
    else:
        assert isinstance(config, RelayConfig)


@FUZZ
@given(documents)
def test_any_yaml_document_loads_or_is_explained(document: Any) -> None:
    assert_loads_or_explains(yaml.safe_dump(document))


@FUZZ
@given(st.data())
def test_any_mutation_of_a_valid_config_loads_or_is_explained(data: st.DataObject) -> None:
    config = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        config = _mutate(config, data)
    assert_loads_or_explains(yaml.safe_dump(config))


@FUZZ
@given(st.data())
def test_any_edit_of_the_valid_text_loads_or_is_explained(data: st.DataObject) -> None:
    """Typos a person makes: characters inserted or deleted, lines swapped or re-indented."""
    lines = CONFIG_YAML.splitlines()
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="edits")):
        if not lines:
            break
        index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1), label="line")
        line = lines[index]
        edit = data.draw(st.sampled_from(["insert", "delete", "indent", "dedent", "swap"]))
        position = data.draw(st.integers(min_value=0, max_value=len(line)), label="column")
        if edit == "insert":
            text = data.draw(
                st.sampled_from(
                    [
                        ":",
                        "-",
                        " ",
                        "'",
                        '"',
                        "{",
                        "[",
                        "#",
                        "\t",
                        "&a",
                        "*a",
                        "!!python/name:os.system",
                        "${",
                    ]
                )
            )
            lines[index] = line[:position] + text + line[position:]
        elif edit == "delete":
            lines[index] = line[:position] + line[position + 3 :]
        elif edit == "indent":
            lines[index] = "  " + line
        elif edit == "dedent":
            lines[index] = line.removeprefix("  ")
        else:
            other = data.draw(st.integers(min_value=0, max_value=len(lines) - 1), label="other")
            lines[index], lines[other] = lines[other], line
    assert_loads_or_explains("\n".join(lines))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200))
def test_any_file_bytes_load_or_are_explained(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "relay.yaml"
        path.write_bytes(content)
        try:
            load_config(path, SECRETS)
        except ConfigError as exc:
            assert all(line.startswith(f"{path}: ") for line in str(exc).splitlines())  # noqa: PT017


def test_a_key_with_a_line_break_still_gives_one_line_per_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('sources: {}\n"bad\\nkey": 1\n', SECRETS, name=NAME)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{NAME}: ") for line in lines), lines


def test_the_valid_config_itself_loads() -> None:
    """The mutations start from a config that loads, so each failure is the mutation's."""
    assert isinstance(parse_config(CONFIG_YAML, SECRETS, name=NAME), RelayConfig)


def _mutate(node: Any, data: st.DataObject) -> Any:
    """Replace, delete, retype or extend one node somewhere in the document."""
    children = (
        list(node.items())
        if isinstance(node, dict)
        else (list(enumerate(node)) if isinstance(node, list) else [])
    )
    if children and data.draw(st.booleans(), label="descend"):
        key, child = data.draw(st.sampled_from(children), label="child")
        node[key] = _mutate(child, data)
        return node
    action = data.draw(
        st.sampled_from(["replace", "delete_child", "add_key", "wrap", "stringify"]),
        label="action",
    )
    if action == "replace":
        return data.draw(documents, label="replacement")
    if action == "delete_child" and children:
        key, _ = data.draw(st.sampled_from(children), label="deleted")
        del node[key]
        return node
    if action == "add_key" and isinstance(node, dict):
        node[data.draw(keys, label="new key")] = data.draw(documents, label="new value")
        return node
    if action == "wrap":
        return [node]
    return str(node)
