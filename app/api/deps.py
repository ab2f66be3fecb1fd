"""Typed access to what the app holds for its routes, instead of untyped ``app.state`` reads.

``create_app`` (app/main.py) puts each part on ``app.state`` once, at start; these are its
only readers. FastAPI routes take the ``…Dep`` forms (``store: StoreDep``); code that is
handed a request outside a route's parameters calls the ``get_…`` functions; the hook fast
path, which runs before FastAPI's routing and pays for no dependency solving, reads its
parts from the state with the ``…_of`` accessors (C-level attribute reads).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from starlette.datastructures import State

from app.admin.login_limits import FailedLogins
from app.api.proxies import TrustedProxies
from app.config.models import RelayConfig
from app.ingest.service import IngestService
from app.observability.metrics import Metrics
from app.settings import Settings
from app.store.base import Store


class Runtime(Protocol):
    """What the API asks of the parts that run beside it (``app.main.Runtime``)."""

    @property
    def worker(self) -> Any: ...  # the in-process worker, if any (None until it starts)

    def worker_check(self) -> dict[str, str]: ...

    def keap_auth_check(self) -> dict[str, str]: ...


def _on_state(name: str) -> Callable[[Request], Any]:
    """A reader of ``app.state.<name>`` (typed where it is bound)."""

    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = get.__qualname__ = f"get_{name}"
    return get


def _depends(get: Callable[[Request], Any]) -> Any:
    """``Depends`` on ``get``, as a coroutine: FastAPI runs a plain function dependency in a
    worker thread, a hop this attribute read does not need."""

    async def dependency(request: Request) -> Any:
        return get(request)

    dependency.__name__ = dependency.__qualname__ = get.__name__
    return Depends(dependency)


# For the hook fast path: a C-level attribute read of the state, typed.
settings_of: Callable[[State], Settings] = attrgetter("settings")
metrics_of: Callable[[State], Metrics] = attrgetter("metrics")
ingest_of: Callable[[State], IngestService] = attrgetter("ingest")  # set in the lifespan

# Per request. The store and the ingest service exist while the app serves (the lifespan).
get_settings: Callable[[Request], Settings] = _on_state("settings")
get_metrics: Callable[[Request], Metrics] = _on_state("metrics")
get_store: Callable[[Request], Store] = _on_state("store")
get_config: Callable[[Request], RelayConfig] = _on_state("config")
# Where the config came from and what it holds, for /readyz.
get_config_detail: Callable[[Request], str] = _on_state("config_detail")
get_runtime: Callable[[Request], Runtime] = _on_state("runtime")
get_proxies: Callable[[Request], TrustedProxies] = _on_state("proxies")
# Failed dashboard sign-ins, per client address (over the store, so set in the lifespan).
get_failed_logins: Callable[[Request], FailedLogins] = _on_state("failed_logins")

SettingsDep = Annotated[Settings, _depends(get_settings)]
MetricsDep = Annotated[Metrics, _depends(get_metrics)]
StoreDep = Annotated[Store, _depends(get_store)]
ConfigDep = Annotated[RelayConfig, _depends(get_config)]
ConfigDetailDep = Annotated[str, _depends(get_config_detail)]
RuntimeDep = Annotated[Runtime, _depends(get_runtime)]
FailedLoginsDep = Annotated[FailedLogins, _depends(get_failed_logins)]
