"""The baseline for the ingest benchmark: a bare FastAPI endpoint that reads the body
and answers 202, served by the same uvicorn as the relay."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

app = FastAPI()


@app.post("/hooks/{source}", status_code=202)
async def receive(source: str, request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"event_id": "evt_bare", "status": "accepted"}, status_code=202)
