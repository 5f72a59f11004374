"""Time as an injected dependency.

The engine never calls ``datetime.now()`` itself: every operation takes its time
from a :class:`Clock`, so tests and the simulator can move time without sleeping.
All instants are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current instant (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until it is moved; for tests and simulations.

    Args:
        start: The initial instant; naive values are taken as UTC.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start if start.tzinfo else start.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant if instant.tzinfo else instant.replace(tzinfo=UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new instant."""
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


__all__ = ["Clock", "FixedClock", "SystemClock"]
