"""The CLI's options are defined once, from the values they set.

Each field of the sim's ``FaultConfig`` is a ``sim-exchange`` flag (a new field gets one without
an edit to the CLI), and the execution options of ``replay`` and ``batch`` show the defaults of
``ExecutionConfig`` in their help and set its fields over a base config.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field

import pytest

from barbus.daemon.cli import build_parser
from barbus.daemon.cli import options as cli_options
from barbus.daemon.cli import sim as cli_sim
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.feeds.sim_faults import FaultConfig


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def help_of(command: str) -> str:
    """``barbus COMMAND --help`` as one line of words (argparse wraps where the terminal ends)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(commands.choices[command].format_help().split())


# -- the sim's fault flags -------------------------------------------------------------------


def test_each_fault_field_is_a_flag_with_the_fields_default() -> None:
    args = parse("sim-exchange")
    text = help_of("sim-exchange")

    for f in dataclasses.fields(FaultConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "partial_updates":  # for tests only: no flag
            assert flag not in text
            assert not hasattr(args, f.name)
            continue
        assert flag in text
        assert getattr(args, f.name) == f.default


def test_the_fault_flags_make_the_fault_config() -> None:
    args = parse(
        *("sim-exchange", "--drop-every", "7", "--malformed-every", "3", "--silent"),
        *("--duplicate-probability", "0.25", "--inject", "price", "--inject-every", "9"),
        *("--inject-price", "5.5", "--rest-fault", "endless", "--rest-fault-times", "2"),
        *("--seed", "42", "--pause-every", "11", "--pause-seconds", "0.5"),
    )

    assert cli_sim.faults_of(args) == FaultConfig(
        drop_every=7,
        malformed_every=3,
        silent=True,
        duplicate_probability=0.25,
        inject="price",
        inject_every=9,
        inject_price=5.5,
        rest_fault="endless",
        rest_fault_times=2,
        seed=42,
        pause_every=11,
        pause_seconds=0.5,
    )


def test_a_new_fault_field_gets_its_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class MoreFaults(FaultConfig):
        flap_every: int = field(
            default=4, metadata={"help": "flap every N-th message ({default})", "metavar": "N"}
        )
        flapping: bool = field(default=False, metadata={"help": "flap at all"})

    monkeypatch.setattr(cli_sim, "FaultConfig", MoreFaults)

    assert "--flap-every N flap every N-th message (4)" in help_of("sim-exchange")
    assert "--flapping flap at all" in help_of("sim-exchange")
    assert cli_sim.faults_of(parse("sim-exchange")) == MoreFaults()
    made = cli_sim.faults_of(parse("sim-exchange", "--flap-every", "3", "--flapping"))
    assert made == MoreFaults(flap_every=3, flapping=True)


def test_a_bad_fault_value_is_one_config_error() -> None:
    from barbus.daemon.core.errors import ConfigError

    message = "sim-exchange: inject must be one of future, misaligned, time_1e30, price"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        cli_sim.faults_of(parse("sim-exchange", "--inject", "nonsense"))


# -- the execution options -------------------------------------------------------------------


@dataclass(frozen=True)
class OtherDefaults(ExecutionConfig):
    """Defaults no help text states: the help must read them from the config."""

    fee_bps: float = 7.5
    slippage_bps: float = 2.0
    fill_at: str = "close"  # type: ignore[assignment]
    starting_cash: float = 25_000.0


@pytest.mark.parametrize("command", ["replay", "batch"])
def test_execution_help_shows_the_configs_defaults(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_options, "ExecutionConfig", OtherDefaults)

    text = help_of(command)

    assert "--fee-bps FEE_BPS fee in basis points (7.5): sets both" in text
    assert "--slippage-bps SLIPPAGE_BPS slippage in basis points (2)" in text
    assert "--cash CASH starting cash (25000)" in text
    assert "fill market orders at the next input bar's open or this bar's close (default)" in text


@pytest.mark.parametrize("command", ["replay", "batch"])
def test_execution_help_shows_todays_defaults(command: str) -> None:
    text = help_of(command)

    assert "fee in basis points (10)" in text
    assert "slippage in basis points (5)" in text
    assert "starting cash (10000)" in text
    assert "at the next input bar's open (default) or this bar's close" in text


def test_execution_flags_set_their_fields_over_a_base() -> None:
    base = ExecutionConfig(fee_bps=20.0, maker_fee_bps=1.0, taker_fee_bps=2.0, starting_cash=5.0)
    replay = ("replay", "--strategy", "sma_cross")

    assert cli_options.execution_of(parse(*replay), base) == base
    assert cli_options.execution_of(parse(*replay)) == ExecutionConfig()
    # --fee-bps sets both fees, over the base's maker and taker fees.
    assert cli_options.execution_of(parse(*replay, "--fee-bps", "0"), base) == ExecutionConfig(
        fee_bps=0.0, starting_cash=5.0
    )
    assert cli_options.execution_of(
        parse(*replay, "--taker-fee-bps", "3", "--cash", "500", "--allow-short"), base
    ) == ExecutionConfig(
        fee_bps=20.0,
        maker_fee_bps=1.0,
        taker_fee_bps=3.0,
        starting_cash=500.0,
        allow_short=True,
    )
    assert cli_options.execution_of(
        parse(*replay, "--slippage-bps", "1.5", "--fill-at", "close", "--maker-fee-bps", "4")
    ) == ExecutionConfig(slippage_bps=1.5, fill_at="close", maker_fee_bps=4.0)


def test_the_given_execution_flags_are_named_in_help_order() -> None:
    args = parse("batch", "--out", "x", "--allow-short", "--cash", "1", "--fee-bps", "0")

    assert cli_options.given_execution_flags(args) == ["--fee-bps", "--cash", "--allow-short"]
    assert cli_options.given_execution_flags(parse("batch", "--out", "x")) == []
