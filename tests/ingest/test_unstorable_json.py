"""JSON the relay cannot store as sent is refused by the parser, naming the place: lone
UTF-16 surrogates and numbers past a double (docs/operations.md, "What a 202 means")."""

from __future__ import annotations

import pytest

from app.ingest.bodies import BodyError, UnstorableJson, parse_body


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            b'{"name": "Ada \\ud83d"}',
            "body.name holds a lone UTF-16 surrogate (\\ud83d at character 4)",
        ),
        (
            b'{"items": [{"sku": "x\\uDFFF"}]}',
            "body.items[0].sku holds a lone UTF-16 surrogate (\\udfff",
        ),
        (b'{"a": {"\\ud800": 1}}', "a key of body.a holds a lone UTF-16 surrogate (\\ud800"),
        (b'[{"total": -1e309}]', "the number -1e309 is beyond the range of a double"),
    ],
)
@pytest.mark.parametrize(
    "content_type", ["application/json", None, "application/x-www-form-urlencoded"]
)
def test_unstorable_json_is_refused_whatever_the_label(
    raw: bytes, named: str, content_type: str | None
) -> None:
    """Also when the body is sniffed (no or a form content type): valid JSON that cannot
    be stored must not be read as a form instead."""
    with pytest.raises(UnstorableJson) as refused:
        parse_body(raw, content_type)
    assert named in str(refused.value)
    assert isinstance(refused.value, BodyError)
    assert refused.value.status_code == 400


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"name": "Ada \\ud83d\\ude00"}', {"name": "Ada \U0001f600"}),  # a whole pair
        (b'{"name": "\\\\ud83d"}', {"name": "\\ud83d"}),  # an escaped backslash, then text
        (b'{"n": 1.7976931348623157e308, "m": 1e-400}', {"n": 1.7976931348623157e308, "m": 0.0}),
        (b'{"big": 123456789012345678901234567890}', {"big": 123456789012345678901234567890}),
    ],
)
def test_what_a_double_and_utf8_can_hold_is_read(raw: bytes, value: object) -> None:
    assert parse_body(raw, "application/json") == value
