"""The test client of the API tests: a TestClient with a bearer token per user, and request helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from engine import Engine, FixedClock
from engine.accounts import Accounts


@dataclass
class Api:
    """A test client with a bearer token per user."""

    client: TestClient
    tokens: dict[str, str]
    engine: Engine
    clock: FixedClock
    accounts: Accounts

    def login_all(self) -> None:
        """Fresh 30-minute tokens for every user (after the clock moved past the old ones)."""
        for user in self.accounts.list_users():
            self.tokens[user.name] = self.accounts.issue_token(user, timedelta(minutes=30)).token

    def advance(self, delta: timedelta) -> None:
        """Move the clock, and log everyone in again."""
        self.clock.advance(delta)
        self.login_all()

    def headers(self, user: str | None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def request(self, method: str, url: str, user: str | None = "koordination", **kwargs: Any) -> Any:
        headers = {**self.headers(user), **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def open_case(self, user: str = "cw_nord", data: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.request("POST", "/api/v1/cases", user, json={"process_id": "intake", "data": data or {}})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def change(self, case: dict[str, Any], path: str, user: str = "cw_nord", **kwargs: Any) -> Any:
        headers = {"If-Match": f'"{case["version"]}"', **kwargs.pop("headers", {})}
        return self.request("POST", f"/api/v1/cases/{case['id']}/{path}", user, headers=headers, **kwargs)
