"""While a route runs an action set, /readyz and the dashboard say that XML-RPC goes."""

from __future__ import annotations

import httpx

from app.main import create_app
from tests.admin.conftest import ADMIN_TOKEN, BEARER, HTML
from tests.conftest import CONFIG_YAML, make_config, make_settings


async def readyz_and_dashboard(database_url: str, config_yaml: str) -> tuple[dict, str]:
    settings = make_settings(database_url, admin_token=ADMIN_TOKEN)
    app = create_app(settings, config=make_config(config_yaml), run_worker=False)
    async with app.fastapi.router.lifespan_context(app.fastapi):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            ready = (await client.get("/readyz")).json()
            page = (await client.get("/admin/", headers={**BEARER, **HTML})).text
    return ready, page


async def test_readyz_and_the_dashboard_warn_while_a_route_runs_an_action_set(
    database_url: str,
) -> None:
    ready, page = await readyz_and_dashboard(database_url, CONFIG_YAML)
    config = ready["checks"]["config"]
    assert config["status"] == "ok"
    assert ready["status"] == "ready"
    assert (
        "warning: 1 action set step(s) in routes paid-order run over XML-RPC" in (config["detail"])
    )
    assert "RELAY_KEAP_XMLRPC_SUNSET" in config["detail"]
    assert "docs/action-sets.md" in config["detail"]
    assert 'data-testid="xmlrpc-sunset"' in page
    assert "docs/action-sets.md" in page


async def test_no_sunset_warning_without_action_sets(database_url: str) -> None:
    ready, page = await readyz_and_dashboard(
        database_url, CONFIG_YAML.replace("      - action_set: 42\n", "")
    )
    assert "XML-RPC" not in ready["checks"]["config"]["detail"]
    assert 'data-testid="xmlrpc-sunset"' not in page
