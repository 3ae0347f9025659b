"""Domain errors to HTTP answers: JSON ``{"detail", "detail_zh"}`` under /api, a Chinese page
elsewhere. Two safety nets keep every answer in that shape: an integrity error the services did
not foresee is a 409, and anything else unexpected a logged 500, never a plain-text traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.beijing import beijing_text
from core.errors import (
    ConcurrentChange,
    Conflict,
    DatabaseBusy,
    DeadlinePassed,
    Forbidden,
    GuardFailed,
    InvalidTransition,
    JingongError,
    NotAuthenticated,
    NotFound,
    RateLimited,
    TooLarge,
    UnsupportedType,
    ValidationFailed,
)
from nominations.states import STATE_LABELS_ZH, State
from storage.faults import disk_full
from web.deps import CsrfFailed, LoginRequired
from web.templating import render
from web.uploads import UploadRejected
from workflow.bulk import RowOutcome

log = logging.getLogger("jingong.web")

FALLBACK_ZH: dict[type[JingongError], str] = {
    NotFound: "未找到相关内容",
    ValidationFailed: "填写的内容有误",
    InvalidTransition: "当前状态下不能执行此操作",
    GuardFailed: "不符合评选规则，操作未执行",
    ConcurrentChange: "该申报已被他人修改，请刷新后重试",
}


def status_of(exc: JingongError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, DatabaseBusy):
        return 503
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, UnsupportedType):
        return 415
    if isinstance(exc, NotAuthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, InvalidTransition | ConcurrentChange | Conflict):
        return 409
    if isinstance(exc, GuardFailed | ValidationFailed):  # DeadlinePassed is a GuardFailed
        return 422
    return 400


def message_zh(exc: JingongError) -> str:
    if exc.message_zh:
        return exc.message_zh
    if isinstance(exc, DeadlinePassed):
        return f"已于北京时间{beijing_text(exc.deadline, seconds=True)}截止"
    for kind, text in FALLBACK_ZH.items():
        if isinstance(exc, kind):
            return text
    return "操作未能完成"


def outcome_rows(outcomes: Iterable[RowOutcome]) -> list[dict[str, Any]]:
    """Each ticked row of a bulk act as JSON: its state now (and in words), changed or not, and
    why it was refused (the API's ``mode: "each"`` and the screening page's script)."""
    return [{"id": o.nomination_id, "state": o.state,
             "state_zh": STATE_LABELS_ZH.get(State(o.state), o.state) if o.state else None,
             "changed": o.changed, "refused": str(o.refused) if o.refused else None,
             "refused_zh": message_zh(o.refused) if o.refused else None} for o in outcomes]


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api") or path == "/healthz"


def error_response(request: Request, status: int, detail: str, detail_zh: str) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": detail, "detail_zh": detail_zh}, status_code=status)
    return render(request, "error.html", {"status": status, "message": detail_zh}, status_code=status)


#: a full disk is a passing state: ask the client to come back (nothing was half-written)
DISK_FULL_RETRY_AFTER = 120


def disk_full_response(request: Request) -> Response:
    response = error_response(request, 503, "the server's disk is full; nothing was saved, try again later",
                              "服务器存储空间已满，本次操作未保存，请稍后重试")
    response.headers["Retry-After"] = str(DISK_FULL_RETRY_AFTER)
    return response


def _server_error(request: Request) -> Response:
    detail, detail_zh = "internal error; it has been logged", "服务器内部错误，已记录，请稍后重试"
    if wants_json(request):
        return JSONResponse({"detail": detail, "detail_zh": detail_zh}, status_code=500)
    try:
        return error_response(request, 500, detail, detail_zh)
    except Exception:  # noqa: BLE001 - the error page itself failed: plain Chinese text, still no traceback
        log.exception("the error page could not be rendered")
        return Response(detail_zh, status_code=500, media_type="text/plain; charset=utf-8")


class CatchAll:
    """Around the routes and the session middleware: an exception that escaped every handler is
    logged with its traceback and answered 500 in the documented shape (unless the answer had
    already begun). Starlette's own last resort would answer plain text and re-raise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _server_error(Request(scope))(scope, receive, send)


def database_error_response(request: Request, exc: OperationalError) -> Response | None:
    """The database's passing states, as 503 with ``Retry-After``; None for anything else."""
    if disk_full(exc):  # SQLite: "database or disk is full"; the transaction was rolled back
        return disk_full_response(request)
    # SQLite's lock held past its busy timeout by a writer outside the line (the scheduler, the
    # mail sender): nothing was written, the client may retry
    if "database is locked" not in str(exc.orig):
        return None
    busy = DatabaseBusy("the database is busy")
    response = error_response(request, 503, str(busy), message_zh(busy))
    response.headers["Retry-After"] = str(busy.retry_after)
    return response


def install(app: FastAPI) -> None:
    app.add_middleware(CatchAll)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        if disk_full(exc):
            return disk_full_response(request)
        raise exc

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # a service should have refused this with a domain error; the database's constraint is the
        # last line, so the act is refused as a conflict and the statement kept in the log only
        log.warning("integrity error answered 409 on %s %s: %s", request.method, request.url.path,
                    str(exc.orig).splitlines()[0] if exc.orig else exc)
        return error_response(request, 409, "the request conflicts with data already stored "
                              "(a duplicate, or a reference to something that does not exist)",
                              "提交的内容与已有数据冲突（重复提交或引用了不存在的内容），请刷新后重试")

    @app.exception_handler(JingongError)
    async def _domain(request: Request, exc: JingongError) -> Response:
        response = error_response(request, status_of(exc), str(exc), message_zh(exc))
        if isinstance(exc, RateLimited | DatabaseBusy):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(OperationalError)
    async def _database_error(request: Request, exc: OperationalError) -> Response:
        response = database_error_response(request, exc)
        if response is None:
            raise exc
        return response

    @app.exception_handler(UploadRejected)
    async def _upload(request: Request, exc: UploadRejected) -> Response:
        return error_response(request, exc.status, str(exc), exc.message_zh)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": "log in first", "detail_zh": "请先登录"}, status_code=401)
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/committee/login?next={target}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return error_response(request, 403, "missing or wrong CSRF token; reload the page",
                              "页面已过期或来源不明，请刷新页面后重试")
