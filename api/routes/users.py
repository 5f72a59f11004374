"""Accounts, for administrators: list, create, disable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import AccountsDep, Admin
from api.routes.common import problems
from api.schemas import UserCreate, UserPublic, UsersPublic

router = APIRouter(prefix="/users", tags=["users"])
UserName = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("", responses=problems())
def read_users(_: Admin, accounts: AccountsDep) -> UsersPublic:
    """Every account (never a password hash)."""
    users = [UserPublic.from_user(u) for u in accounts.list_users()]
    return UsersPublic(data=users, count=len(users))


@router.post("", status_code=201, responses=problems(409))
def create_user(_: Admin, accounts: AccountsDep, body: UserCreate) -> UserPublic:
    """Create an account with a role and an optional team."""
    return UserPublic.from_user(accounts.add_user(body.name, body.password, role=body.role, team=body.team))


@router.post("/{name}/disable", responses=problems(404))
def disable_user(_: Admin, accounts: AccountsDep, name: UserName) -> UserPublic:
    """Disable an account; its tokens stop working at once."""
    return UserPublic.from_user(accounts.disable_user(name))
