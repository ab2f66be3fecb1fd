"""XML-RPC bodies: requests marshalled by the standard library, responses parsed by
defusedxml's expat parser (no DTDs, entities or external references) into the standard
unmarshaller. Nothing global is patched.
"""

from __future__ import annotations

import re
import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser

# Characters XML 1.0 cannot carry at all; a webhook's field could hold one, and the server
# would then refuse the whole request as unparsable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class XmlRpcFault(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


class XmlRpcDecodeError(Exception):
    """The body is not a readable XML-RPC methodResponse."""


def encode_call(method: str, params: tuple[Any, ...]) -> bytes:
    body: str = xmlrpc.client.dumps(_xml_safe(params), methodname=method, encoding="utf-8")
    return body.encode("utf-8")


def decode_response(body: bytes) -> Any:
    """The single value of a methodResponse; raises XmlRpcFault or XmlRpcDecodeError."""
    unmarshaller = xmlrpc.client.Unmarshaller(use_builtin_types=True)
    parser = DefusedExpatParser(unmarshaller, forbid_dtd=True)
    try:
        parser.feed(body)
        parser.close()
        values = unmarshaller.close()
    except xmlrpc.client.Fault as fault:
        raise XmlRpcFault(_fault_code(fault.faultCode), str(fault.faultString)) from None
    except DefusedXmlException as exc:
        raise XmlRpcDecodeError(f"forbidden XML construct ({type(exc).__name__})") from None
    except ExpatError as exc:
        raise XmlRpcDecodeError(f"malformed XML ({exc})") from None
    except (xmlrpc.client.ResponseError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise XmlRpcDecodeError(f"not a methodResponse ({type(exc).__name__})") from None
    if len(values) != 1:
        raise XmlRpcDecodeError(f"a methodResponse carries one value, this one {len(values)}")
    return values[0]


def _fault_code(code: Any) -> int:
    try:
        return int(code)
    except (TypeError, ValueError):
        return 0


def _xml_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _XML_ILLEGAL.sub("", value)
    if isinstance(value, tuple):
        return tuple(_xml_safe(item) for item in value)
    if isinstance(value, list):
        return [_xml_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: _xml_safe(item) for key, item in value.items()}
    return value
