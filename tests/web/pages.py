"""Page tests over HTTP: a logged-in browser session on the ``api`` fixture's app (SQLite and PostgreSQL).

:class:`WebSession` holds a session cookie issued for a user and adds the CSRF token to
every form post, as the page's hidden field would. For what only a browser shows (focus,
scripts, layout, accessibility) use the Playwright tests instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.web.session import CSRF_FIELD, SESSION_COOKIE, SESSION_LIFETIME, csrf_token
from tests.api.client import Api


@dataclass
class WebSession:
    api: Api
    user: str
    token: str = ""

    def __post_init__(self) -> None:
        account = self.api.accounts.get_user(self.user)
        self.token = self.api.accounts.issue_token(account, SESSION_LIFETIME).token

    @property
    def csrf(self) -> str:
        return csrf_token(self.api.client.app.state.settings, self.token)

    @property
    def cookie(self) -> dict[str, str]:
        # A Cookie header rather than ``cookies=``: per-request cookies are deprecated in httpx2,
        # and the client's own jar must stay empty so each session is separate.
        return {"Cookie": f"{SESSION_COOKIE}={self.token}"}

    def get(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.api.client.get(url, headers={**self.cookie, **(headers or {})}, follow_redirects=False, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any) -> Any:
        form = {**(data or {}), **({CSRF_FIELD: self.csrf} if csrf else {})}
        headers = {**self.cookie, **kwargs.pop("headers", {})}
        return self.api.client.post(url, data=form, headers=headers, follow_redirects=False, **kwargs)
