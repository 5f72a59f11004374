"""OpenAPI pieces shared by the routers: the problem responses each route can give."""

from __future__ import annotations

from typing import Any

from api.errors import PROBLEM_JSON
from api.schemas import Problem

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Role not allowed",
    404: "Not found",
    406: "Not acceptable",
    409: "Conflict with the case's state",
    412: "If-Match is stale",
    415: "Unsupported media type",
    422: "Invalid request or data",
    428: "If-Match missing",
    503: "Database unavailable",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem documents for ``statuses`` (plus 401, 403, 422, 500, 503)."""
    wanted = sorted({401, 403, 422, 500, 503, *statuses})
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, "Internal error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in wanted
    }
