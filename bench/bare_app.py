"""The baseline of bench/vote_bench.py: a FastAPI endpoint that parses the same body and header
as ``POST /api/votes`` and does no work, served by the same uvicorn the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header
from pydantic import BaseModel

app = FastAPI()


class VoteRequest(BaseModel):
    nomination_id: int


@app.post("/api/votes", status_code=201)
def bare(body: VoteRequest, authorization: Annotated[str | None, Header()] = None) -> dict[str, object]:
    return {"vote_id": 0, "nomination_id": body.nomination_id}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
