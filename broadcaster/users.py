"""Accounts of the web console: a name, a role and an argon2id password hash.

Roles, each including what the one before may do:

- ``operator``: drafts and edits content, uploads recordings, adds and pauses schedules;
- ``approver``: also approves and retires items, cancels a held SMS campaign;
- ``admin``: everything (the same rights as approver today; users are managed with the CLI).

Any signed-in user may send an emergency announcement (after a confirmation step).
"""

from __future__ import annotations

import re
from enum import StrEnum

from sqlmodel import Session, select

from .errors import InputError, NotFoundError
from .models import WebUser

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 8


class Role(StrEnum):
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


ROLE_RANK = {Role.OPERATOR: 0, Role.APPROVER: 1, Role.ADMIN: 2}


def may(role: str, needed: Role) -> bool:
    """Whether ``role`` includes the rights of ``needed``."""
    try:
        return ROLE_RANK[Role(role)] >= ROLE_RANK[needed]
    except ValueError:
        return False


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not NAME_RE.match(name):
        raise InputError("tên đăng nhập 2–32 ký tự a-z, 0-9, '.', '_', '-' / user name: 2-32 characters "
                         "a-z, 0-9, '.', '_', '-'", field="name")
    return name


def add_user(session: Session, name: str, role: str, password: str) -> WebUser:
    name = check_name(name)
    if role not in {r.value for r in Role}:
        raise InputError(f"vai trò không hợp lệ / unknown role '{role}' (operator, approver, admin)", field="role")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"mật khẩu cần ít nhất {MIN_PASSWORD_CHARS} ký tự / the password needs at least "
                         f"{MIN_PASSWORD_CHARS} characters", field="password")
    if session.exec(select(WebUser).where(WebUser.name == name)).first() is not None:
        raise InputError(f"đã có người dùng '{name}' / user '{name}' exists", field="name")
    user = WebUser(name=name, role=role, password_hash=_hasher().hash(password))
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[WebUser]:
    return list(session.exec(select(WebUser).order_by(WebUser.name)).all())


def get_user(session: Session, name: str) -> WebUser:
    user = session.exec(select(WebUser).where(WebUser.name == (name or "").strip().lower())).first()
    if user is None:
        raise NotFoundError(f"không có người dùng '{name}' / no user '{name}'")
    return user


def remove_user(session: Session, name: str) -> None:
    session.delete(get_user(session, name))


# A hash of a random password: a sign-in with an unknown name costs as much as one with a known name.
_DUMMY_HASH: str | None = None


def authenticate(session: Session, name: str, password: str) -> WebUser | None:
    """The user whose name and password these are, or None (the time taken does not tell which failed)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    global _DUMMY_HASH
    user = session.exec(select(WebUser).where(WebUser.name == (name or "").strip().lower())).first()
    hasher = _hasher()
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hasher.hash("not a password of anyone")
        try:
            hasher.verify(_DUMMY_HASH, password or "")
        except VerificationError:
            pass
        return None
    try:
        hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return None
    return user
