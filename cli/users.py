"""``jingong users``: committee accounts (office admin, reviewer, vetting officer)."""

from __future__ import annotations

import typer
from rich.table import Table

from accounts import service as accounts
from accounts.models import Role
from audit import service as audit
from cli.common import cli_actor, console, engine
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
    """Set a committee member's password (every session of the member ends)."""
    if password is None:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with unit_of_work(engine()) as session:
        user = accounts.get_by_username(session, username)
        ended = accounts.set_password(session, user, password, actor=cli_actor(as_))
    console.print(f"password of {username} changed; {ended} session(s) ended")


@users_app.command("logout")
def users_logout(
    username: str,
    as_: str = typer.Option(None, "--as", help="who is acting (recorded in the audit trail)"),
) -> None:
    """End every login session of a committee member."""
    with unit_of_work(engine()) as session:
        user = accounts.get_by_username(session, username)
        ended = accounts.end_sessions(session, user, actor=cli_actor(as_))
    console.print(f"{ended} session(s) of {username} ended")


@users_app.command("deactivate")
def users_deactivate(
    username: str,
    as_: str = typer.Option(None, "--as", help="who is acting (recorded in the audit trail)"),
) -> None:
    """Deactivate a committee member: no more logins, every session ends at once."""
    with unit_of_work(engine()) as session:
        user = accounts.get_by_username(session, username)
        ended = accounts.set_active(session, user, False, actor=cli_actor(as_))
    console.print(f"{username} deactivated; {ended} session(s) ended")


@users_app.command("activate")
def users_activate(
    username: str,
    as_: str = typer.Option(None, "--as", help="who is acting (recorded in the audit trail)"),
) -> None:
    """Let a deactivated committee member log in again."""
    with unit_of_work(engine()) as session:
        user = accounts.get_by_username(session, username)
        accounts.set_active(session, user, True, actor=cli_actor(as_))
    console.print(f"{username} activated")
