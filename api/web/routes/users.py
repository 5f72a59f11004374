"""Administration pages: the accounts (list, add, disable) and the access log for the data-protection officer.

Only the ``admin`` role reaches these pages, and they show no case data: the access log
names who touched which case when, which *fields* (names, never values) and by which
route (the purpose), exactly as :mod:`engine.audit` records it. Accounts are created and
disabled through :class:`engine.accounts.Accounts`, as the JSON API does; its refusals
(:class:`~engine.accounts.InvalidAccount`, :class:`~engine.accounts.UserExists`) become
German messages at the field they concern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import AccountsDep, EngineDep
from api.security import ADMINS
from api.web.i18n import N_
from api.web.routes.reports import DATE_HINT, day_start, parse_day
from api.web.session import CsrfChecked, page_for
from api.web.templating import gettext_for, render
from engine import audit
from engine.accounts import ROLES, InvalidAccount, User, UserExists, UserNotFound
from engine.store import Store, access_t

router = APIRouter(include_in_schema=False)

AdminUser = Annotated[User, Depends(page_for(*ADMINS))]

PAGE_SIZE = 50
#: German messages for the fields :meth:`engine.accounts.Accounts.add_user` refuses.
ACCOUNT_PROBLEMS = {
    "name": N_("Der Benutzername braucht 1 bis 128 Zeichen und darf keine Leerzeichen enthalten."),
    "role": N_("Bitte eine der Rollen wählen."),
    "password": N_("Das Passwort braucht mindestens 8 Zeichen."),
}
#: The form's field for each field of the engine's problems.
FORM_FIELDS = {"name": "name", "role": "rolle", "password": "passwort"}
ACCESS_KINDS = {audit.READ: N_("gelesen"), audit.CHANGE: N_("geändert"), audit.ANONYMISE: N_("anonymisiert")}


# --------------------------------------------------------------------------- accounts


def _accounts_page(
    request: Request,
    accounts: AccountsDep,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    flash: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "users/accounts.html",
        status_code=status_code,
        users=accounts.list_users(),
        roles=ROLES,
        values=values or {"name": "", "rolle": "", "team": ""},
        errors=errors or {},
        flash=flash,
    )


@router.get("/konten")
def accounts_page(
    request: Request,
    _: AdminUser,
    accounts: AccountsDep,
    angelegt: Annotated[str | None, Query(max_length=128)] = None,
    gesperrt: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Every account with its role, team and state, and the form for a new one."""
    gettext = gettext_for(request)
    flash = None
    if angelegt:
        flash = {"kind": "ok", "text": gettext("Das Konto „%(name)s“ wurde angelegt.") % {"name": angelegt}}
    elif gesperrt:
        flash = {
            "kind": "ok",
            "text": gettext("Das Konto „%(name)s“ ist gesperrt; seine Sitzungen sind beendet.") % {"name": gesperrt},
        }
    return _accounts_page(request, accounts, flash=flash)


@router.post("/konten", dependencies=[CsrfChecked])
def add_account(
    request: Request,
    _: AdminUser,
    accounts: AccountsDep,
    name: Annotated[str, Form(max_length=200)] = "",
    rolle: Annotated[str, Form(max_length=32)] = "",
    team: Annotated[str, Form(max_length=64)] = "",
    passwort: Annotated[str, Form(max_length=1024)] = "",
    passwort2: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Create an account; the password is typed twice so a typo cannot lock the new user out."""
    values = {"name": name, "rolle": rolle, "team": team}
    errors: dict[str, str] = {}
    if passwort != passwort2:
        errors["passwort2"] = N_("Die beiden Passwörter stimmen nicht überein.")
    try:
        if not errors:
            user = accounts.add_user(name, passwort, role=rolle, team=team.strip() or None)
    except InvalidAccount as exc:
        for problem in exc.problems:
            errors[FORM_FIELDS.get(problem, "name")] = ACCOUNT_PROBLEMS.get(problem, N_("Diese Angabe ist ungültig."))
    except UserExists:
        errors["name"] = N_("Diesen Benutzernamen gibt es schon.")
        return _accounts_page(request, accounts, values=values, errors=errors, status_code=409)
    if errors:
        return _accounts_page(request, accounts, values=values, errors=errors, status_code=422)
    return RedirectResponse(f"/konten?{urlencode({'angelegt': user.name})}", status_code=303)


def _existing(accounts: AccountsDep, name: str) -> User:
    try:
        return accounts.get_user(name)
    except UserNotFound:
        raise HTTPException(404) from None


@router.get("/konten/sperren")
def confirm_disable(
    request: Request, admin: AdminUser, accounts: AccountsDep, name: Annotated[str, Query(max_length=128)]
) -> Response:
    """Ask before disabling: the user's sessions end at once and they can no longer log in."""
    return render(request, "users/disable.html", account=_existing(accounts, name), error=None)


@router.post("/konten/sperren", dependencies=[CsrfChecked])
def disable_account(
    request: Request, admin: AdminUser, accounts: AccountsDep, name: Annotated[str, Form(max_length=128)]
) -> Response:
    """Disable an account (its tokens are revoked); an administrator cannot lock out themselves."""
    account = _existing(accounts, name)
    if account.name == admin.name:
        error = N_("Sie können Ihr eigenes Konto nicht sperren. Bitten Sie eine andere Administratorin darum.")
        return render(request, "users/disable.html", status_code=409, account=account, error=error)
    accounts.disable_user(account.name)
    return RedirectResponse(f"/konten?{urlencode({'gesperrt': account.name})}", status_code=303)


# --------------------------------------------------------------------------- the access log


@dataclass
class AccessFilters:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    actor: str | None = None
    case_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query(self, **extra: object) -> str:
        return urlencode({**{k: v for k, v in self.values.items() if v}, **extra})


def read_access_filters(benutzer: str, fall: str, von: str, bis: str) -> AccessFilters:
    filters = AccessFilters(
        {"benutzer": benutzer.strip(), "fall": fall.strip(), "von": von.strip(), "bis": bis.strip()}
    )
    values, errors = filters.values, filters.errors
    filters.actor = values["benutzer"] or None
    if values["fall"]:
        if values["fall"].isdigit() and 1 <= int(values["fall"]) < 2**31:
            filters.case_id = int(values["fall"])
        else:
            errors["fall"] = N_("Bitte eine Fallnummer (eine ganze Zahl) eingeben.")
    days: dict[str, date | None] = {}
    for name in ("von", "bis"):
        try:
            days[name] = parse_day(values[name])
        except ValueError:
            errors[name] = DATE_HINT
            days[name] = None
        else:
            if days[name] is not None:
                values[name] = days[name].isoformat()
    if days["von"] and days["bis"] and days["bis"] < days["von"]:
        errors["bis"] = N_("Das Ende des Zeitraums liegt vor seinem Anfang.")
    filters.since = day_start(days["von"]) if days["von"] else None
    filters.until = day_start(days["bis"] + timedelta(days=1)) if days["bis"] else None
    return filters


def access_page(
    store: Store, filters: AccessFilters, *, before_id: int | None, limit: int = PAGE_SIZE
) -> tuple[list[audit.AccessEntry], bool]:
    """One page of access-log entries, newest first, and whether older ones follow.

    Like :func:`engine.audit.entries` (same columns and entry type), with a period and
    newest-first keyset paging: the data-protection officer usually asks about the recent past.
    """
    a = access_t.c
    where = []
    if filters.actor is not None:
        where.append(a.actor == filters.actor)
    if filters.case_id is not None:
        where.append(a.case_id == filters.case_id)
    if filters.since is not None:
        where.append(a.at >= filters.since)
    if filters.until is not None:
        where.append(a.at < filters.until)
    if before_id is not None:
        where.append(a.id < before_id)
    query = sa.select(a.id, a.at, a.actor, a.role, a.case_id, a.access, a.fields, a.route).where(*where)
    with store.read() as conn:
        rows = conn.execute(query.order_by(a.id.desc()).limit(limit + 1)).all()
    entries = [audit.AccessEntry(*row[:6], tuple(row.fields or ()), row.route) for row in rows[:limit]]
    return entries, len(rows) > limit


@router.get("/konten/zugriffsprotokoll")
def access_log(
    request: Request,
    _: AdminUser,
    engine: EngineDep,
    accounts: AccountsDep,
    benutzer: Annotated[str, Query(max_length=128)] = "",
    fall: Annotated[str, Query(max_length=12)] = "",
    von: Annotated[str, Query(max_length=20)] = "",
    bis: Annotated[str, Query(max_length=20)] = "",
    vor: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """Who read or changed which case's data, when, which fields and why — filtered and a page at a time."""
    filters = read_access_filters(benutzer, fall, von, bis)
    entries: list[audit.AccessEntry] = []
    more = False
    if not filters.errors:
        entries, more = access_page(engine.store, filters, before_id=vor)
    return render(
        request,
        "users/access_log.html",
        status_code=422 if filters.errors else 200,
        filters=filters,
        entries=entries,
        older=filters.query(vor=entries[-1].id) if more and entries else None,
        first_page=filters.query() if vor is not None else None,
        user_names=[u.name for u in accounts.list_users()],
        access_kinds=ACCESS_KINDS,
    )


__all__ = ["access_page", "router"]
