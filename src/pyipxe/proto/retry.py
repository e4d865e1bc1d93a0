"""iPXE's retry timer (core/retry.c), shared by the DHCP, DHCPv6 and router-discovery machines.

Why shared: all three retransmit on the same rule — start at ``min`` (0 means a quarter
second), double on every expiry, fail when the doubled value would pass ``max`` — and a
sans-IO machine only asks its driver for a timer (:class:`SetTimer`) and hears back
(:class:`TimerExpired`); stale tokens are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_TIMEOUT = 0.25  # retry.c: a zero minimum means a quarter second


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Output: call back with :class:`TimerExpired` (same token) after ``seconds``."""

    seconds: float
    token: int


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """Input: the timer with this token ran out."""

    token: int


@dataclass(frozen=True)
class Timing:
    """One state's retry limits."""

    min_timeout: float
    max_timeout: float


class RetryTimer:
    """iPXE's retry timer: backoff doubling between per-state limits, one live token."""

    def __init__(self, timing: Timing = Timing(1.0, 10.0)) -> None:
        self.timing = timing
        self.timeout = 0.0
        self.token = 0

    def reset(self, timing: Timing) -> None:
        self.timing, self.timeout = timing, 0.0
        self.token += 1  # any running timer is stale now

    def expire(self) -> bool:
        """Back off; True when this expiry is the failure (the doubled value passed max)."""
        self.timeout *= 2
        if self.timeout > self.timing.max_timeout:
            self.timeout = self.timing.max_timeout
            return True
        return False

    def start(self) -> SetTimer:
        low = self.timing.min_timeout or DEFAULT_MIN_TIMEOUT
        self.timeout = min(max(self.timeout, low), self.timing.max_timeout)
        self.token += 1
        return SetTimer(self.timeout, self.token)
