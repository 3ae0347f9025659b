"""``jingong serve``: the web service, with the scheduler and the mail sender."""

from __future__ import annotations

import typer

from cli.common import console, engine, service_process


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    access_log: bool = typer.Option(True, help="log every request (turn off under heavy load)"),
) -> None:
    """Run the web service (portal, dashboard, public pages, API) with the scheduler and the
    mail sender. Run `jingong init` first."""
    import uvicorn

    from config.settings import get_settings
    from web.app import create_app, ensure_admin

    settings = get_settings()
    with service_process(settings):
        # the first start's write happens here, before uvicorn: a database that refuses writes
        # (read-only, full) is then one line from `jingong`, not uvicorn's startup traceback
        ensure_admin(engine(), settings)
        app = create_app(engine(), settings, create_admin=False)
        console.print(f"jingong on http://{host}:{port}  (API docs: /docs; data: {settings.data_dir})")
        # X-Forwarded-For is read by the app itself, from FORWARDED_ALLOW_IPS only (web/forwarded.py;
        # `jingong doctor` reports it): uvicorn's own reading stays off
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, access_log=access_log)
