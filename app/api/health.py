"""``/healthz`` (the process serves) and ``/readyz`` (it can do its job)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse

from app.api.deps import ConfigDep, ConfigDetailDep, RuntimeDep, SettingsDep, StoreDep
from app.config.models import RelayConfig
from app.config.sunset import sunset_summary
from app.settings import Settings
from app.store.base import Store

router = APIRouter()


def check(status: str, detail: str) -> dict[str, str]:
    return {"status": status, "detail": detail}


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz(
    store: StoreDep,
    config: ConfigDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    config_detail: ConfigDetailDep,
) -> JSONResponse:
    checks: dict[str, Any] = {
        "database": await _database_check(store),
        "config": _config_check(config, config_detail, settings),
        "worker": runtime.worker_check(),
        "keap_auth": runtime.keap_auth_check(),
    }
    ready = checks["database"]["status"] == "ok" and checks["worker"]["status"] in ("ok", "skipped")
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def _config_check(config: RelayConfig, detail: str, settings: Settings) -> dict[str, str]:
    if warning := sunset_summary(config, settings.keap_xmlrpc_sunset):
        detail += f"; warning: {warning}"  # still ok: the relay runs, the routes need work
    return check("ok", detail)


async def _database_check(store: Store) -> dict[str, str]:
    try:
        await asyncio.wait_for(store.ping(), timeout=2.0)
    except Exception as exc:  # any failure to answer is "not ready", with the reason
        return check("failing", f"{type(exc).__name__}: {exc}"[:300])
    durability = ", ".join(f"{name}={value}" for name, value in store.durability().items())
    return check("ok", f"{store.dialect} reachable; commits durable ({durability})")
