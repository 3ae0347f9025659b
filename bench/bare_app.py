"""The baselines of bench/vote_bench.py: FastAPI endpoints that parse the same body and header as
``POST /api/votes`` and do no work, served by the same uvicorn the same way.

``app`` answers from the event loop (``async def``): the least FastAPI can do for a request.
``app_threadpool`` is the same endpoint as a plain ``def``, which FastAPI runs in its thread pool:
the hop to a thread and back that every blocking endpoint pays."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header
from pydantic import BaseModel


class VoteRequest(BaseModel):
    nomination_id: int


app = FastAPI()
app_threadpool = FastAPI()


@app.post("/api/votes", status_code=201)
async def bare(body: VoteRequest, authorization: Annotated[str | None, Header()] = None) -> dict[str, object]:
    return {"vote_id": 0, "nomination_id": body.nomination_id}


@app_threadpool.post("/api/votes", status_code=201)
def bare_threadpool(body: VoteRequest, authorization: Annotated[str | None, Header()] = None) -> dict[str, object]:
    return {"vote_id": 0, "nomination_id": body.nomination_id}


@app.get("/healthz")
@app_threadpool.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
