"""Execution settings have one source: ExecutionConfig's defaults, read through one constructor.

The daemon config, a batch spec and a parity state's record each name the settings as their
files do; ``ExecutionConfig.from_mapping`` reads them all, and a setting left out takes the
dataclass default, so changing a default there changes it for every reader.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.config import load_config
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.parity import _EngineInputs
from barbus.daemon.state import EngineRecord
from barbus.replay.batch import load_spec
from barbus.replay.loader import bundled_data_path
from barbus.replay.portfolio import EngineSpec

CONFIG = """
[feed]
rest_url = "http://127.0.0.1:8765"
ws_url = "ws://127.0.0.1:8765"
symbols = ["BTCUSDT"]

[[strategy]]
name = "sma"
strategy = "sma_cross"
symbol = "BTCUSDT"
"""

# Unlike every shipped default: 12 bps fee, 7 bps slippage, fill at the close, 4,321 cash.
OTHER_DEFAULTS = (12.0, 7.0, "close", 4321.0, None, None, False)


@pytest.fixture
def other_defaults(monkeypatch: pytest.MonkeyPatch) -> ExecutionConfig:
    """ExecutionConfig with other defaults, as if its dataclass fields said so."""
    monkeypatch.setattr(ExecutionConfig.__init__, "__defaults__", OTHER_DEFAULTS)
    changed = ExecutionConfig()
    assert (changed.fee_bps, changed.fill_at, changed.starting_cash) == (12.0, "close", 4321.0)
    return changed


def test_from_mapping_reads_every_setting_by_the_files_names() -> None:
    raw = {
        "fee_bps": 3,
        "slippage_bps": 2,
        "fill_at": "close",
        "capital": 500,
        "maker_fee_bps": 1,
        "taker_fee_bps": 4.5,
        "allow_short": True,
        "something_else": "ignored: the callers check their keys",
    }

    execution = ExecutionConfig.from_mapping(raw, cash_key="capital")

    assert execution == ExecutionConfig(3.0, 2.0, "close", 500.0, 1.0, 4.5, True)
    assert type(execution.fee_bps) is float
    assert type(execution.starting_cash) is float
    assert ExecutionConfig.from_mapping({}) == ExecutionConfig()
    assert ExecutionConfig.from_mapping({"cash": 7}).starting_cash == 7.0
    assert ExecutionConfig.from_mapping({"capital": 7}).starting_cash == 10_000.0  # not its key
    assert ExecutionConfig.from_mapping({"maker_fee_bps": None}).maker_fee_bps is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"fee_bps": "a"}, "f.toml: execution settings: could not convert string to float: 'a'"),
        (
            {"cash": [1]},
            "f.toml: execution settings: float() argument must be a string or a real number, "
            "not 'list'",
        ),
        ({"allow_short": "yes"}, "f.toml: allow_short must be true or false, got 'yes'"),
        # A number that is no number wins over a bad flag; a bad flag over a range.
        (
            {"allow_short": 1, "taker_fee_bps": "x"},
            "f.toml: execution settings: could not convert string to float: 'x'",
        ),
        ({"allow_short": 1, "fee_bps": -1}, "f.toml: allow_short must be true or false, got 1"),
        # Ranges keep the dataclass's own bare message, for the caller to place.
        ({"fee_bps": -1}, "fee_bps must be in [0, 10000) basis points, got -1.0"),
        ({"fill_at": None}, "fill_at must be 'next_open' or 'close', got None"),
        ({"cash": 0}, "starting_cash must be > 0, got 0.0"),
    ],
)
def test_from_mapping_names_a_bad_value_the_way_the_readers_always_did(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ExecutionConfig.from_mapping(raw, where="f.toml: ")
    assert str(caught.value) == message


def test_a_daemon_config_takes_the_dataclass_defaults(
    other_defaults: ExecutionConfig, tmp_path: Path
) -> None:
    path = tmp_path / "barbus.toml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")

    config = load_config(path)

    assert config.execution == other_defaults
    assert config.strategies[0].capital == 4321.0


def test_a_batch_spec_takes_the_dataclass_defaults(
    other_defaults: ExecutionConfig, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[[run]]\nstrategy = "sma_cross"\ndata = "{bundled_data_path()}"\n')

    jobs = load_spec(spec).jobs

    assert jobs
    assert {job.execution for job in jobs} == {other_defaults}


def test_parity_takes_the_default_cash_for_a_strategy_on_a_shared_account(
    other_defaults: ExecutionConfig,
) -> None:
    config = {
        "strategy": "sma_cross",
        "params": {},
        "fee_bps": 1.0,
        "slippage_bps": 2.0,
        "fill_at": "next_open",
        "account": "pool",  # its cash is the account's: the record keeps no capital
    }
    snapshot = {"version": 2, "position": {"size": 0.0}, "trade_from_ms": 0}
    record = EngineRecord("sma", "sma_cross", "BTCUSDT", config, snapshot, 0)

    inputs = _EngineInputs.read(Path("state.sqlite"), record)

    assert inputs.execution == ExecutionConfig(1.0, 2.0, "next_open", 4321.0)


def test_a_portfolio_engine_starts_with_the_default_cash() -> None:
    assert EngineSpec("sma", "sma_cross", "BTCUSDT").capital == ExecutionConfig().starting_cash
