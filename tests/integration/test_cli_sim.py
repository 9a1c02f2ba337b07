"""The sim's port line is the CLI's: ``serve()`` tells its caller the bound port and prints
nothing; ``barbus sim-exchange`` prints the one JSON line that tests and the ops kit read."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from barbus.daemon.feeds.sim import serve
from tests.conftest import BTC_2023_WITH_GAP
from tests.factories import bars_from_closes, series_from_bars
from tests.kit.probes import http_get
from tests.kit.processes import Processes
from tests.kit.scenario import write_slice


def test_serve_tells_the_bound_port_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    bars = bars_from_closes([100.0 + i for i in range(30)])
    told: list[int] = []

    async def scenario() -> tuple[int, dict[str, Any]]:
        listening = asyncio.Event()

        def tell(port: int) -> None:
            told.append(port)
            listening.set()

        served = asyncio.create_task(
            serve([series_from_bars(bars)], port=0, history_bars=5, speed=0, listening=tell)
        )
        try:
            await asyncio.wait_for(listening.wait(), 30)
            url = f"http://127.0.0.1:{told[0]}/sim/status"
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status, await response.json()
        finally:
            served.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await served

    status, body = asyncio.run(scenario())

    assert len(told) == 1
    assert (status, body["last_open_ms"]) == (200, bars[-1].open_time_ms)
    assert capsys.readouterr().out == ""


def test_sim_exchange_prints_its_port_as_one_json_line(
    processes: Processes, tmp_path: Path
) -> None:
    write_slice(BTC_2023_WITH_GAP, 0, 600, tmp_path / "data")

    proc, port = processes.sim(
        tmp_path / "data" / "BTCUSDT_1m_slice.csv", "--cache-dir", str(tmp_path / "cache")
    )

    first = proc.stdout().splitlines()[0]
    assert first == '{"host": "127.0.0.1", "port": ' + str(port) + "}"
    assert json.loads(first) == {"host": "127.0.0.1", "port": port}
    answer = http_get(port, "/sim/status")
    assert answer is not None
    assert answer[0] == 200, answer
