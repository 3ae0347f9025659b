"""Domain errors to HTTP answers: JSON ``{"detail", "detail_zh"}`` under /api, a Chinese page
elsewhere."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError

from core.beijing import beijing_text
from core.errors import (
    ConcurrentChange,
    Conflict,
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
from storage.faults import disk_full
from web.deps import CsrfFailed, LoginRequired
from web.templating import render
from web.uploads import UploadRejected

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


def install(app: FastAPI) -> None:
    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        if disk_full(exc):
            return disk_full_response(request)
        raise exc

    @app.exception_handler(OperationalError)
    async def _database_error(request: Request, exc: OperationalError) -> Response:
        if disk_full(exc):  # SQLite: "database or disk is full"; the transaction was rolled back
            return disk_full_response(request)
        raise exc

    @app.exception_handler(JingongError)
    async def _domain(request: Request, exc: JingongError) -> Response:
        response = error_response(request, status_of(exc), str(exc), message_zh(exc))
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
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
