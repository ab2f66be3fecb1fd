"""The baseline for the ingest benchmark: a bare FastAPI endpoint that reads the body
and answers 202, served by the same uvicorn and interpreter settings as ``relay serve``.

``python -m bench.bare_app --port N`` serves it.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from app.interpreter import tune_for_serving
from app.settings import Settings

app = FastAPI()


@app.post("/hooks/{source}", status_code=202)
async def receive(source: str, request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"event_id": "evt_bare", "status": "accepted"}, status_code=202)


@app.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The uvicorn.Config arguments of `relay serve` (app/cli.py), so only the app differs.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
    )
    tune_for_serving(Settings().tune_interpreter)  # and the interpreter settings of `relay serve`
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
