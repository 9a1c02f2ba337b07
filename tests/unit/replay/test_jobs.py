"""Job ids: the first release's formula for jobs that use no newer execution option."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.replay.batch import Job

PARAMS = (("fast", 5), ("slow", 20))
DATA, START, END = "/data/BTCUSDT_1m.csv.gz", 1_679_270_400_000, 1_679_443_200_000


def job(execution: ExecutionConfig | None = None, fingerprint: str = "") -> Job:
    return Job(
        "sma_cross",
        PARAMS,
        DATA,
        "BTCUSDT",
        START,
        END,
        execution or ExecutionConfig(),
        fingerprint=fingerprint,
    )


def first_release_id(fingerprint: str, execution: Mapping[str, object]) -> str:
    """The id as the previous release computed it: its four execution fields, by hand."""
    identity: list[object] = [
        "sma_cross",
        [list(p) for p in PARAMS],
        DATA,
        "BTCUSDT",
        START,
        END,
        dict(execution),
    ]
    if fingerprint:
        identity.append(fingerprint)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


@pytest.mark.parametrize("fingerprint", ["", "5221a7aa0a3833fe"])
@pytest.mark.parametrize(
    "execution",
    [ExecutionConfig(), ExecutionConfig(fee_bps=0.0, slippage_bps=1.0, fill_at="close")],
)
def test_a_job_without_newer_options_keeps_the_first_releases_id(
    fingerprint: str, execution: ExecutionConfig
) -> None:

    old = {
        "fee_bps": execution.fee_bps,
        "slippage_bps": execution.slippage_bps,
        "fill_at": execution.fill_at,
        "starting_cash": execution.starting_cash,
    }
    assert job(execution, fingerprint).job_id == first_release_id(fingerprint, old)


@pytest.mark.parametrize(
    "execution",
    [
        ExecutionConfig(maker_fee_bps=2.0),
        ExecutionConfig(taker_fee_bps=2.0),
        ExecutionConfig(maker_fee_bps=10.0),  # equal to fee_bps, but asked for: its own job
        ExecutionConfig(allow_short=True),
    ],
)
def test_each_newer_option_makes_another_job(execution: ExecutionConfig) -> None:
    assert job(execution).job_id != job().job_id
