"""What the simulated exchange does wrong: its fault and hostile switches as one frozen value.

Apart from the exchange (``sim.py``) because the CLI builds a ``sim-exchange`` flag from each
field of :class:`FaultConfig` (its help text and metavar in the field's metadata), and this
module imports nothing heavy: building the parser does not load aiohttp. A field whose metadata
says ``flag: False`` is for tests only and has no flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["INJECT_KINDS", "REST_FAULTS", "REST_HTTP_FAULTS", "FaultConfig"]

T = TypeVar("T")

INJECT_KINDS = ("future", "misaligned", "time_1e30", "price")
# empty and stale answer only hole requests (with endTime); the rest every backfill request.
REST_FAULTS = (
    "duplicate",
    "unsorted",
    "past_end",
    "oversize",
    "endless",
    "empty",
    "stale",
    "future",
    "not_list",
)

# How a klines request itself fails, before any page: what downloads must survive.
REST_HTTP_FAULTS = ("429", "418", "500", "slow", "truncated")


def _switch(default: T, help: str, metavar: str | None = None) -> T:
    """A field with its ``sim-exchange --flag``'s help text (``{default}`` shows the default)
    and metavar."""
    metadata: dict[str, Any] = {"help": help, "metavar": metavar}
    result: T = field(default=default, metadata=metadata)
    return result


@dataclass(frozen=True)
class FaultConfig:
    """What goes wrong, and how often (0 = never). Randomness is seeded: runs are repeatable."""

    drop_every: int = _switch(0, "close each connection after K messages", "K")
    # Every N-th message is replaced by garbage (the real one follows).
    malformed_every: int = _switch(0, "insert a malformed message every M messages", "M")
    duplicate_probability: float = _switch(
        0.0, "send a closed candle twice with probability P", "P"
    )
    reorder_probability: float = _switch(
        0.0, "send a closed candle after the next one with probability P", "P"
    )
    # After every N-th message of the run (all connections together, so that --drop-every
    # cannot keep it from firing), stop sending for pause_seconds.
    pause_every: int = _switch(
        0, "pause sending after every N-th message of the run (all connections together)", "N"
    )
    pause_seconds: float = _switch(0.0, "length of each pause")
    # Also send an open-candle update (x=false) before each close.
    partial_updates: bool = field(default=True, metadata={"flag": False})
    seed: int = _switch(1, "seed of the fault dice ({default})")
    skip_every: int = _switch(
        0, "never send every N-th closed candle over WebSocket (a hole to backfill)", "N"
    )
    # Hostile: a fake final candle (one of INJECT_KINDS) before every N-th real one.
    inject: str = _switch(
        "",
        "hostile: send a fake closed candle before every N-th real one; KIND is future "
        "(10 years ahead), misaligned (+1234 ms), time_1e30 or price (--inject-price)",
        "KIND",
    )
    inject_every: int = _switch(0, "how often --inject fires", "N")
    # The price of an injected "price" candle (all of O/H/L/C).
    inject_price: float = _switch(1e300, "price of an --inject price candle ({default})", "P")
    silent: bool = _switch(False, "hostile: WebSockets answer pings but never send data")
    # Hostile: damage every N-th backfill answer (one of REST_FAULTS), at most `times` (0: all).
    rest_fault: str = _switch(
        "",
        "hostile: damage backfill answers: duplicate, unsorted, past_end, oversize, "
        "endless, empty, stale (these two: hole requests only), future, not_list",
        "KIND",
    )
    rest_fault_every: int = _switch(1, "damage every N-th backfill answer ({default})", "N")
    rest_fault_times: int = _switch(0, "damage at most N answers (0 = no limit)", "N")
    oversize_rows: int = _switch(
        400_000, "rows of an --rest-fault oversize answer ({default})", "N"
    )
    # Faulty HTTP: every N-th klines request answers one of REST_HTTP_FAULTS instead.
    rest_http: str = _switch(
        "",
        "faulty HTTP: every N-th klines request answers 429 or 418 (with Retry-After), 500, "
        "slow (after --rest-slow-seconds) or truncated JSON",
        "KIND",
    )
    rest_http_every: int = _switch(1, "fail every N-th klines request ({default})", "N")
    rest_http_times: int = _switch(0, "fail at most N requests (0 = no limit)", "N")
    retry_after: int = _switch(1, "the Retry-After seconds of a 429 or 418 ({default})", "S")
    rest_slow_seconds: float = _switch(2.0, "delay of a slow answer ({default} s)", "S")

    def __post_init__(self) -> None:
        if self.inject and self.inject not in INJECT_KINDS:
            raise ValueError(f"inject must be one of {', '.join(INJECT_KINDS)}")
        if self.rest_fault and self.rest_fault not in REST_FAULTS:
            raise ValueError(f"rest_fault must be one of {', '.join(REST_FAULTS)}")
        if self.rest_http and self.rest_http not in REST_HTTP_FAULTS:
            raise ValueError(f"rest_http must be one of {', '.join(REST_HTTP_FAULTS)}")
