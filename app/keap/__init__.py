"""The Infusionsoft (Keap) API client: where Keap calls are made and every failure is classified.

``client`` makes the calls, ``replies`` reads their answers, ``lookups`` finds the ids a
webhook does not carry (companies, the sending user), ``errors`` classifies failures,
``auth`` keeps OAuth tokens, ``xmlrpc`` marshals the legacy protocol, ``throttle`` reads
Keap's rate headers. docs/keap-api.md lists every call and its source.
"""

from app.keap.client import (
    CallGate,
    ContactFields,
    KeapCall,
    KeapClient,
    KeapCredentials,
    StoredToken,
    TokenStore,
)
from app.keap.errors import (
    KeapAuthError,
    KeapError,
    KeapPermanentError,
    KeapThrottledError,
    KeapTransientError,
)

__all__ = [
    "CallGate",
    "ContactFields",
    "KeapAuthError",
    "KeapCall",
    "KeapClient",
    "KeapCredentials",
    "KeapError",
    "KeapPermanentError",
    "KeapThrottledError",
    "KeapTransientError",
    "StoredToken",
    "TokenStore",
]
