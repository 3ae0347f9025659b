"""``jingong users``: committee accounts (office admin, reviewer, vetting officer)."""

from __future__ import annotations

import typer
from rich.table import Table

from accounts import service as accounts
from accounts.models import Role
from audit import service as audit
from cli.common import cli_actor, console, engine
from core.errors import NotFound
from storage.db import unit_of_work

users_app = typer.Typer(help="Committee accounts (office admin, reviewer, vetting officer).", no_args_is_help=True)


@users_app.command("add")
def users_add(
    username: str,
    role: Role = typer.Option(..., help="office_admin, reviewer or vetting_officer"),
    password: str = typer.Option(None, help="the password (asked for when not given)"),
    display_name: str = typer.Option(None, "--name", help="name shown on pages"),
    email: str = typer.Option(None),
    unit_id: int = typer.Option(None, "--unit", help="the member's nominating unit (conflict of interest)"),
    as_: str = typer.Option(None, "--as", help="who is acting (recorded in the audit trail)"),
) -> None:
    """Create a committee account."""
    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with unit_of_work(engine()) as session:
        user = accounts.create_user(session, username, password, role, display_name=display_name, email=email,
                                    unit_id=unit_id)
        audit.record(session, actor=cli_actor(as_), action="user_created", subject=f"user:{user.username}",
                     data={"role": role.value})
    console.print(f"created {username} ({role.value})")


@users_app.command("list")
def users_list() -> None:
    """Committee accounts."""
    with unit_of_work(engine(), readonly=True) as session:
        rows = accounts.list_users(session)
    table = Table("id", "username", "name", "role", "unit", "active")
    for u in rows:
        table.add_row(str(u.id), u.username, u.display_name, str(u.role), str(u.unit_id or ""),
                      "yes" if u.active else "no")
    console.print(table)


@users_app.command("passwd")
def users_passwd(
    username: str,
    password: str = typer.Option(None, help="the new password (asked for when not given)"),
    as_: str = typer.Option(None, "--as", help="who is acting (recorded in the audit trail)"),
) -> None:
    """Set a committee member's password."""
    if password is None:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with unit_of_work(engine()) as session:
        user = next((u for u in accounts.list_users(session) if u.username == username), None)
        if user is None:
            raise NotFound(f"no user {username!r}")
        accounts.set_password(session, user, password)
        audit.record(session, actor=cli_actor(as_), action="password_set", subject=f"user:{username}")
    console.print(f"password of {username} changed")
