"""Body parsing: JSON, PHP-style forms, sniffing, and the 400/415 refusals (SPEC §2)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import RelayError
from app.ingest.bodies import (
    MAX_FORM_FIELDS,
    MAX_JSON_CONTAINERS,
    MAX_JSON_VALUES,
    MAX_NESTING,
    BodyError,
    UnsupportedBody,
    _form_decode,
    parse_body,
    parse_form,
    parse_query,
)

FORM = "application/x-www-form-urlencoded"

# --- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/vnd.api+json",  # Lemon Squeezy's JSON:API
        "application/cloudevents+json; charset=utf-8",
    ],
)
def test_json_types_parse_as_json(content_type: str) -> None:
    body = b'{"customer": {"email": "ann@example.com"}, "total": 12.5, "paid": true}'
    parsed = parse_body(body, content_type)
    assert parsed == {"customer": {"email": "ann@example.com"}, "total": 12.5, "paid": True}


def test_a_json_array_is_returned_whole_for_the_caller_to_split() -> None:
    body = b'[{"id": 1, "type": "Sale.created"}, {"id": 2, "type": "User.created"}]'
    assert parse_body(body, "application/json") == [
        {"id": 1, "type": "Sale.created"},
        {"id": 2, "type": "User.created"},
    ]


def test_utf8_text_and_a_leading_bom_are_read() -> None:
    body = '\ufeff{"name": "Zoë Ångström"}'.encode()
    assert parse_body(body, "application/json") == {"name": "Zoë Ångström"}


@pytest.mark.parametrize("scalar", [b'"just a string"', b"42", b"true", b"null"])
def test_a_json_scalar_is_a_400(scalar: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        parse_body(scalar, "application/json")
    assert caught.value.status == 400
    assert str(caught.value) == "body is JSON but not an object or an array"


@pytest.mark.parametrize(
    "body",
    [
        b'{"email": "ann@example.com"',
        b"email=ann@example.com",
        b"{'single': 'quotes'}",
        b'{"a": 1} trailing',
        b'{"total": NaN}',
        b'{"total": Infinity}',
        b'{"name": "\xff\xfe"}',  # not UTF-8
        b"[" * 5_000 + b"]" * 5_000,  # deeper than the parser's recursion
    ],
)
def test_a_body_labelled_json_that_does_not_parse_is_a_400(body: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        parse_body(body, "application/json")
    assert caught.value.status == 400
    assert caught.value.status_code == 400
    assert str(caught.value).startswith("body is not valid JSON: ")
    assert not isinstance(caught.value, UnsupportedBody)


# --- forms, the PHP way -------------------------------------------------------------------


def test_nested_keys_become_objects() -> None:
    form = "customer[email]=ann%40example.com&customer[address][city]=Paris&event=order.success"
    assert parse_form(form) == {
        "customer": {"email": "ann@example.com", "address": {"city": "Paris"}},
        "event": "order.success",
    }


def test_indexed_keys_become_lists_in_index_order() -> None:
    form = "items[1][sku]=B-2&items[0][sku]=A-1&items[0][qty]=3&items[1][qty]=1"
    assert parse_form(form) == {"items": [{"sku": "A-1", "qty": "3"}, {"sku": "B-2", "qty": "1"}]}


def test_empty_brackets_append() -> None:
    assert parse_form("trigger_levels[]=gold&trigger_levels[]=silver") == {
        "trigger_levels": ["gold", "silver"]
    }
    # PHP appends after the largest integer key so far.
    assert parse_form("a[5]=x&a[]=y&a[]=z") == {"a": {"5": "x", "6": "y", "7": "z"}}
    assert parse_form("a[0]=x&a[]=y") == {"a": ["x", "y"]}
    assert parse_form("rows[][sku]=A&rows[][sku]=B") == {"rows": [{"sku": "A"}, {"sku": "B"}]}


def test_numeric_keys_that_are_not_0_to_n_stay_an_object_with_string_keys() -> None:
    assert parse_form("a[0]=x&a[2]=y") == {"a": {"0": "x", "2": "y"}}
    assert parse_form("a[1]=x") == {"a": {"1": "x"}}
    assert parse_form("a[0]=x&a[name]=y") == {"a": {"0": "x", "name": "y"}}
    assert parse_form("a[00]=x&a[01]=y") == {"a": {"00": "x", "01": "y"}}  # not integers in PHP


def test_the_top_level_stays_an_object_even_with_numeric_keys() -> None:
    assert parse_form("0=a&1=b") == {"0": "a", "1": "b"}


def test_a_repeated_plain_key_keeps_the_last_value() -> None:
    assert parse_form("email=old%40example.com&email=new%40example.com") == {
        "email": "new@example.com"
    }
    assert parse_form("a[x]=1&a[x]=2") == {"a": {"x": "2"}}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("a=1&a[b]=2", {"a": {"b": "2"}}),
        ("a[b]=2&a=1", {"a": "1"}),
        ("a[b]=1&a[b][c]=2", {"a": {"b": {"c": "2"}}}),
        ("a[b][c]=2&a[b]=1", {"a": {"b": "1"}}),
        ("a[]=1&a[0][x]=2", {"a": [{"x": "2"}]}),
    ],
)
def test_conflicting_shapes_let_the_later_field_win(form: str, expected: dict[str, Any]) -> None:
    assert parse_form(form) == expected


def test_values_stay_strings_and_blank_values_are_kept() -> None:
    assert parse_form("qty=3&paid=true&note=&flag") == {
        "qty": "3",
        "paid": "true",
        "note": "",
        "flag": "",
    }


def test_percent_encoding_and_plus_are_decoded_in_keys_and_values() -> None:
    form = "customer%5Bfirst_name%5D=Ann+Marie&customer%5Bemail%5D=ann%2Btag%40example.com"
    assert parse_form(form) == {
        "customer": {"first_name": "Ann Marie", "email": "ann+tag@example.com"}
    }


def test_names_php_would_not_nest() -> None:
    assert parse_form("=orphan&[a]=x&ok=1") == {"ok": "1"}  # empty base names are dropped
    assert parse_form("a[b=1") == {"a[b": "1"}  # an unclosed bracket is a plain key
    assert parse_form("a[b]junk[c]=1") == {"a": {"b": "1"}}  # text after "]" is ignored
    assert parse_form("a[b[c]]=1") == {"a": {"b[c": "1"}}  # a key runs to the first "]"
    assert parse_form("+email=a%40b.c") == {"email": "a@b.c"}  # leading spaces are dropped


def test_a_thrivecart_style_form_reads_as_nested_fields() -> None:
    form = (
        "thrivecart_secret=abc&event=order.success&mode=live&order_id=123"
        "&customer[email]=ann%40example.com&customer[first_name]=Ann"
        "&purchases[0][product_id]=7&purchases[1][product_id]=9"
    )
    body = parse_body(form.encode(), FORM)
    assert body["customer"]["email"] == "ann@example.com"
    assert [p["product_id"] for p in body["purchases"]] == ["7", "9"]


def test_invalid_utf8_in_a_form_is_replaced_not_refused() -> None:
    assert parse_form(b"name=Zo\xeb&email=a%40b.c") == {"name": "Zo\ufffd", "email": "a@b.c"}
    assert parse_form("name=Zo%EB") == {"name": "Zo\ufffd"}


def test_nesting_up_to_the_limit_is_accepted_and_beyond_it_refused() -> None:
    # The form's own object is a level: a field with 31 bracketed keys makes 32 levels.
    at_limit = "a" + "[x]" * (MAX_NESTING - 1) + "=1"
    parsed: Any = parse_form(at_limit)["a"]
    for _ in range(MAX_NESTING - 1):
        parsed = parsed["x"]
    assert parsed == "1"
    with pytest.raises(BodyError, match="nested more than 32 levels") as caught:
        parse_form("a" + "[x]" * MAX_NESTING + "=1")
    assert caught.value.status == 400


def test_json_nesting_is_limited_to_the_same_levels_as_forms() -> None:
    at_limit = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert parse_body(at_limit.encode(), "application/json") == json.loads(at_limit)
    deeper = '{"a":' * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1)
    for content_type in ("application/json", None, FORM):  # sniffing does not fall back
        with pytest.raises(BodyError, match="nested more than 32 levels") as caught:
            parse_body(deeper.encode(), content_type)
        assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" + ",".join(["{}"] * (MAX_JSON_CONTAINERS + 1)) + "]", "objects and lists"),
        ("[" + ",".join(["0"] * (MAX_JSON_VALUES + 1)) + "]", "JSON values"),
    ],
)
def test_json_that_would_build_too_many_objects_is_refused_before_parsing(
    body: str, reason: str
) -> None:
    with pytest.raises(BodyError, match=reason) as caught:
        parse_body(body.encode(), None)
    assert caught.value.status == 413


def test_field_count_up_to_the_limit_is_accepted_and_beyond_it_refused() -> None:
    fields = [f"f{i}=v" for i in range(MAX_FORM_FIELDS)]
    assert len(parse_form("&".join(fields))) == MAX_FORM_FIELDS
    assert len(parse_form("&".join([*fields, ""]))) == MAX_FORM_FIELDS  # a trailing &
    with pytest.raises(BodyError, match="more than 1000 fields") as caught:
        parse_form("&".join([*fields, "one=more"]))
    assert caught.value.status == 413


def test_a_form_of_half_a_million_fields_is_refused_without_reading_them_all() -> None:
    # parse_qsl would first build all 500,000 pairs (~0.3 s); the scan stops at the limit.
    body = "&".join(["a=b"] * 500_000).encode()
    started = time.process_time()
    with pytest.raises(BodyError, match="more than 1000 fields"):
        parse_body(body, FORM)
    assert time.process_time() - started < 0.05


def test_a_thousand_appends_parse_quickly() -> None:
    # Appending must not rescan the list each time.
    parsed = parse_form("&".join(["tags[]=x"] * MAX_FORM_FIELDS))
    assert parsed["tags"] == ["x"] * MAX_FORM_FIELDS


def test_parse_query_uses_the_form_rules() -> None:
    query = "token=s3cret&event_type=mm_member_add&email=ann%40example.com&levels[]=1&levels[]=2"
    assert parse_query(query) == {
        "token": "s3cret",
        "event_type": "mm_member_add",
        "email": "ann@example.com",
        "levels": ["1", "2"],
    }
    assert parse_query("") == {}


# --- choosing by Content-Type, and sniffing ------------------------------------------------


def test_form_encoded_bodies_parse_as_forms() -> None:
    assert parse_body(b"webhook_id=42", FORM) == {"webhook_id": "42"}
    assert parse_body(b"a[b]=1", f"{FORM}; charset=UTF-8") == {"a": {"b": "1"}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"trigger": "pmpro_after_checkout", "user_email": "a@b.c"}',
            {
                "trigger": "pmpro_after_checkout",
                "user_email": "a@b.c",
            },
        ),
        (b' [{"id": 1}] ', [{"id": 1}]),
    ],
)
def test_json_labelled_as_form_is_read_as_json(body: bytes, expected: Any) -> None:
    # A WordPress plugin bug: JSON sent as application/x-www-form-urlencoded.
    assert parse_body(body, FORM) == expected


def test_a_form_that_starts_with_a_bracket_is_still_a_form() -> None:
    assert parse_body(b"[x]=1&email=a%40b.c", FORM) == {"email": "a@b.c"}
    assert parse_body(b"{not json}=1", FORM) == {"{not json}": "1"}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "   ",
        "Content-Type: application/json",  # the header's name sent inside its value
        "json",
        "application",
        "application/json/extra",
        "; charset=utf-8",
        "application /json",
    ],
)
def test_absent_or_unparsable_content_types_are_sniffed(content_type: str | None) -> None:
    assert parse_body(b'{"user_email": "a@b.c"}', content_type) == {"user_email": "a@b.c"}
    assert parse_body(b"[1, 2]", content_type) == [1, 2]
    assert parse_body(b"email=a%40b.c&name=Ann", content_type) == {"email": "a@b.c", "name": "Ann"}


def test_sniffing_reads_a_json_scalar_as_a_form_rather_than_failing() -> None:
    assert parse_body(b"42", None) == {"42": ""}


@pytest.mark.parametrize("content_type", [None, "application/json", FORM, "text/plain"])
@pytest.mark.parametrize("body", [b"", b"   ", b"\r\n"])
def test_an_empty_body_is_an_empty_object(content_type: str | None, body: bytes) -> None:
    assert parse_body(body, content_type) == {}


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "text/plain"),
        ("application/xml; charset=utf-8", "application/xml"),
        ("text/xml", "text/xml"),
        ("application/octet-stream", "application/octet-stream"),
        ("multipart/form-data; boundary=xyz", "multipart/form-data"),
    ],
)
def test_other_content_types_are_a_415_naming_the_type(content_type: str, named: str) -> None:
    with pytest.raises(UnsupportedBody) as caught:
        parse_body(b'{"looks": "like json"}', content_type)
    assert caught.value.status == 415
    assert caught.value.status_code == 415
    assert named in str(caught.value)
    assert isinstance(caught.value, BodyError)


def test_body_errors_are_relay_errors_for_the_one_problem_handler() -> None:
    with pytest.raises(RelayError) as caught:
        parse_body(b"<xml/>", "application/xml")
    assert caught.value.detail == str(caught.value)


# --- properties ---------------------------------------------------------------------------

FORMISH = st.text(alphabet="ab[]=&%5BD0x+ \u00e9", max_size=120)


def _only_strings_lists_and_objects(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return all(map(_only_strings_lists_and_objects, value))
    return isinstance(value, dict) and all(
        isinstance(k, str) and _only_strings_lists_and_objects(v) for k, v in value.items()
    )


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=300), FORMISH, st.binary(max_size=300)))
def test_parse_form_never_raises_anything_but_body_error(text: str | bytes) -> None:
    try:
        parsed = parse_form(text)
    except BodyError:
        return
    assert isinstance(parsed, dict)
    assert _only_strings_lists_and_objects(parsed)
    json.dumps(parsed)  # what is parsed can be stored


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
    content_type=st.one_of(
        st.none(),
        st.sampled_from(["application/json", FORM, "text/plain", "application/x+json"]),
        st.text(max_size=40),
    ),
)
def test_parse_body_never_raises_anything_but_body_error(
    body: bytes, content_type: str | None
) -> None:
    try:
        parsed = parse_body(body, content_type)
    except BodyError:
        return
    assert isinstance(parsed, dict | list)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abc=%+_ \t\r\n0123456789ABCDEFaf~.-é\u2603", max_size=40))
def test_form_names_and_values_decode_exactly_as_urllib_does(text: str) -> None:
    # The C-speed decoder replaced urllib's: every name and value must read the same.
    assert _form_decode(text.encode()) == unquote_plus(text, errors="replace")


def test_a_form_of_escapes_decodes_quickly() -> None:
    # urllib decodes each %XX in Python: 75 ms for 1 MiB of them. Lone % signs must not
    # send the decoder back to the slow path.
    body = b"a=%" + b"%41" * 349_000
    started = time.process_time()
    assert parse_form(body)["a"] == "%" + "A" * 349_000
    assert time.process_time() - started < 0.04
