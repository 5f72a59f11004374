"""Logging in: a name and password (OAuth2 password form or JSON) for a short-lived bearer token."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api.deps import AccountsDep, SettingsDep
from api.errors import ApiProblem
from api.routes.common import problems
from api.schemas import TokenCreate, TokenPublic

router = APIRouter(prefix="/auth", tags=["auth"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                    "required": ["username", "password"],
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/TokenCreate"}},
        },
    }
}


@router.post("/token", responses=problems(400, 415), openapi_extra=_BODY)
async def create_token(request: Request, accounts: AccountsDep, settings: SettingsDep) -> TokenPublic:
    """Exchange a user name and password for a bearer token (OAuth2 password form or JSON body)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            credentials = TokenCreate.model_validate(json.loads(await request.body() or b"null"))
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            credentials = TokenCreate(username=str(form.get("username", "")), password=str(form.get("password", "")))
        else:
            raise ApiProblem("unsupported-media-type", "Anmeldung als Formular oder JSON senden")
    except (ValidationError, ValueError) as exc:
        raise ApiProblem("request-invalid", "Benutzername und Passwort erforderlich") from exc
    user = await run_in_threadpool(accounts.authenticate, credentials.username, credentials.password)
    lifetime = timedelta(minutes=settings.token_lifetime_minutes)
    issued = await run_in_threadpool(accounts.issue_token, user, lifetime)
    return TokenPublic(access_token=issued.token, expires_at=issued.expires_at, role=user.role)  # type: ignore[arg-type]
