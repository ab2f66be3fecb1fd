"""Typed access to what the app holds for its routes, instead of untyped ``app.state`` reads.

``create_app`` (app/main.py) puts each part on ``app.state`` once, at start; these are its
only readers. FastAPI routes take the ``…Dep`` forms (``store: StoreDep``); code that is
handed a request outside a route's parameters calls the ``get_…`` functions; the hook fast
path, which runs before FastAPI's routing and pays for no dependency solving, reads its
parts from the state with the ``…_of`` accessors.
"""

from __future__ import annotations

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


# --- on the state: for the hook fast path, and the request-level getters below ---------


def settings_of(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def metrics_of(state: State) -> Metrics:
    metrics: Metrics = state.metrics
    return metrics


def ingest_of(state: State) -> IngestService:
    """The ingest service (set in the lifespan, with the store)."""
    service: IngestService = state.ingest
    return service


# --- per request ------------------------------------------------------------------------


def get_settings(request: Request) -> Settings:
    return settings_of(request.app.state)


def get_metrics(request: Request) -> Metrics:
    return metrics_of(request.app.state)


def get_store(request: Request) -> Store:
    """The store (set in the lifespan: it exists while the app serves)."""
    store: Store = request.app.state.store
    return store


def get_config(request: Request) -> RelayConfig:
    config: RelayConfig = request.app.state.config
    return config


def get_config_detail(request: Request) -> str:
    """Where the config came from and what it holds, for /readyz."""
    detail: str = request.app.state.config_detail
    return detail


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_proxies(request: Request) -> TrustedProxies:
    proxies: TrustedProxies = request.app.state.proxies
    return proxies


def get_failed_logins(request: Request) -> FailedLogins:
    """Failed dashboard sign-ins, per client address."""
    limits: FailedLogins = request.app.state.failed_logins
    return limits


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
StoreDep = Annotated[Store, Depends(get_store)]
ConfigDep = Annotated[RelayConfig, Depends(get_config)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
FailedLoginsDep = Annotated[FailedLogins, Depends(get_failed_logins)]
