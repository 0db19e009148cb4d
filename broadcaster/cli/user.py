"""``user``: accounts of the web console."""

from __future__ import annotations

import sys

import click

from .. import users
from ..errors import InputError
from .common import BroadcasterGroup, echo_table, fmt_dt, get_app

ROLE_LABELS = {"operator": "soạn tin/operator", "approver": "duyệt tin/approver", "admin": "quản trị/admin"}


@click.group("user", cls=BroadcasterGroup)
def user_group() -> None:
    """Tài khoản trang quản lý web / web console accounts."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in users.Role]),
              help="Vai trò / role: operator soạn và lên lịch, approver duyệt, admin tất cả / operator drafts "
                   "and schedules, approver approves, admin everything.")
@click.option("--password-stdin", is_flag=True, help="Đọc mật khẩu từ đầu vào chuẩn / read the password from "
                                                     "standard input.")
def user_add(name: str, role: str, password_stdin: bool) -> None:
    """Thêm người dùng / add a user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InputError("mật khẩu trống / empty password", field="--password-stdin")
    with get_app().session() as session:
        user = users.add_user(session, name, role, password)
        shown = user.name
    click.echo(f"Đã thêm người dùng / user added: {shown} ({ROLE_LABELS[role]})")


@user_group.command("list")
def user_list() -> None:
    """Liệt kê người dùng / list users."""
    app = get_app()
    with app.read_session() as session:
        rows = [(u.name, ROLE_LABELS.get(u.role, u.role), fmt_dt(u.created_at, app.config.broadcaster.timezone))
                for u in users.list_users(session)]
    if not rows:
        click.echo("Chưa có người dùng / no users yet: broadcaster user add NAME --role approver")
        return
    echo_table(["Tên/name", "Vai trò/role", "Tạo lúc/created"], rows, title="Người dùng / users")


@user_group.command("remove")
@click.argument("name")
def user_remove(name: str) -> None:
    """Xóa người dùng / remove a user."""
    with get_app().session() as session:
        users.remove_user(session, name)
    click.echo(f"Đã xóa người dùng / user removed: {name}")


COMMANDS = [user_group]
