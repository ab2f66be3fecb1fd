"""XML-RPC bodies: standard marshalling out, defused parsing in."""

from __future__ import annotations

import xmlrpc.client

import pytest

from app.keap.xmlrpc import XmlRpcDecodeError, XmlRpcFault, decode_response, encode_call


def test_encode_call_is_a_standard_method_call() -> None:
    body = encode_call("ContactService.runActionSequence", ("key", 48872, 42))
    assert xmlrpc.client.loads(body) == (("key", 48872, 42), "ContactService.runActionSequence")


def test_characters_xml_cannot_carry_are_dropped() -> None:
    body = encode_call(
        "ContactService.addWithDupCheck", ("k", {"FirstName": "Ada\x00\x1b"}, "Email")
    )
    params, _ = xmlrpc.client.loads(body)
    assert params[1] == {"FirstName": "Ada"}


def test_decode_response_returns_the_value() -> None:
    body = xmlrpc.client.dumps(([{"Action": "a", "isError": False}],), methodresponse=True)
    assert decode_response(body.encode()) == [{"Action": "a", "isError": False}]


def test_decode_response_raises_faults() -> None:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(5, "[RecordNotFound]x"))
    with pytest.raises(XmlRpcFault) as caught:
        decode_response(body.encode())
    assert (caught.value.code, caught.value.message) == (5, "[RecordNotFound]x")


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Bad gateway</body></html>",
        b"",
        b"<?xml version='1.0'?><methodResponse><params><param><value><int>1",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><methodResponse/>',
        b"<methodResponse><params></params></methodResponse>",
    ],
)
def test_anything_else_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(XmlRpcDecodeError):
        decode_response(body)
