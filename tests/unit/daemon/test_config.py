"""The daemon's TOML config: the shipped example loads, and every mistake is a clear ConfigError."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from barbus.daemon.config import DaemonConfig, load_config
from barbus.daemon.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = REPO_ROOT / "ops" / "barbus.example.toml"

FEED = """
[feed]
rest_url = "http://127.0.0.1:8765"
ws_url = "ws://127.0.0.1:8765"
symbols = ["BTCUSDT"]
"""
STRATEGY = """
[[strategy]]
name = "sma-btc"
strategy = "sma_cross"
symbol = "BTCUSDT"
"""


def write_config(folder: Path, text: str, name: str = "barbus.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(folder: Path, text: str) -> DaemonConfig:
    return load_config(write_config(folder, text))


def config_error(folder: Path, text: str) -> str:
    """Load ``text`` and return the ConfigError message it must raise."""
    with pytest.raises(ConfigError) as caught:
        load_text(folder, text)
    return str(caught.value)


# -- what loads ------------------------------------------------------------------------------


def test_example_config_loads_with_its_documented_values() -> None:
    config = load_config(EXAMPLE)

    assert config.feed.symbols == ("BTCUSDT",)
    assert config.feed.interval == "1m"
    assert config.warmup_bars == 500
    assert config.max_bar_age_seconds == 150.0
    assert [(s.name, s.strategy, s.symbol) for s in config.strategies] == [
        ("metatrend-btc", "metatrend", "BTCUSDT"),
        ("sma-btc", "sma_cross", "BTCUSDT"),
    ]
    assert config.strategies[1].params == {
        "fast": 10,
        "slow": 30,
        "stop_loss_pct": 3.0,
        "take_profit_pct": 6.0,
    }
    assert (config.execution.fee_bps, config.execution.slippage_bps) == (10.0, 5.0)
    assert config.execution.fill_at == "next_open"
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8080)
    assert config.log_level == "INFO"
    assert config.source == EXAMPLE
    assert config.state_path == EXAMPLE.parent / "../out/barbus-state.sqlite"


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, FEED + STRATEGY)

    assert config.warmup_bars == 500
    assert config.http.port == 8080
    assert config.log_level == "INFO"
    assert config.state_path == tmp_path / "barbus-state.sqlite"
    [strategy] = config.strategies
    assert (strategy.capital, strategy.params) == (10_000.0, {})


def test_relative_state_path_is_resolved_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "barbus"
    folder.mkdir(parents=True)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_config(folder, FEED + STRATEGY + '[state]\npath = "data/state.sqlite"\n')

    config = load_config(path)

    assert config.state_path == folder / "data" / "state.sqlite"


def test_absolute_state_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "var" / "state.sqlite"

    config = load_text(tmp_path, FEED + STRATEGY + f'[state]\npath = "{target}"\n')

    assert config.state_path == target


def test_symbols_and_log_level_are_case_insensitive(tmp_path: Path) -> None:
    text = FEED.replace('["BTCUSDT"]', '["btcusdt"]') + STRATEGY.replace('"BTCUSDT"', '"btcusdt"')

    config = load_text(tmp_path, text + '[log]\nlevel = "debug"\n')

    assert config.feed.symbols == ("BTCUSDT",)
    assert config.strategies[0].symbol == "BTCUSDT"
    assert config.log_level == "DEBUG"


def test_strategy_without_a_name_is_named_after_strategy_and_symbol(tmp_path: Path) -> None:
    text = FEED + '[[strategy]]\nstrategy = "metatrend"\nsymbol = "BTCUSDT"\n'

    config = load_text(tmp_path, text)

    assert config.strategies[0].name == "metatrend-btcusdt"


# -- what is rejected, and how it is said ------------------------------------------------------


def test_unknown_section_is_rejected_with_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + "[exection]\nfee_bps = 1\n")

    assert "unknown key 'exection'" in message
    assert "did you mean 'execution'?" in message
    assert str(tmp_path / "barbus.toml") in message


def test_unknown_key_in_a_section_is_rejected_with_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + "warmup_bar = 10\n" + STRATEGY)

    assert "[feed]" in message
    assert "unknown key 'warmup_bar'" in message
    assert "did you mean 'warmup_bars'?" in message


def test_unknown_key_in_a_strategy_table_is_rejected_with_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + "captial = 5000\n")

    assert "[[strategy]] #1" in message
    assert "did you mean 'capital'?" in message


@pytest.mark.parametrize(
    ("extra", "where", "expected"),
    [
        ('[http]\nport = "8080"\n', "[http].port", "expected int"),
        ("[log]\nlevel = 10\n", "[log].level", "expected str"),
        ("[execution]\nfee_bps = true\n", "[execution].fee_bps", "expected int or float"),
        ('[state]\npath = ["a"]\n', "[state].path", "expected str"),
    ],
    ids=["port-string", "level-int", "fee-bool", "path-list"],
)
def test_wrong_type_names_the_key_and_the_expected_type(
    tmp_path: Path, extra: str, where: str, expected: str
) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + extra)

    assert where in message
    assert expected in message


def test_wrong_type_in_feed_section_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + 'warmup_bars = "500"\n' + STRATEGY)

    assert "[feed].warmup_bars: expected int, got '500'" in message


def test_section_that_is_not_a_table_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, 'log = "DEBUG"\n' + FEED + STRATEGY)

    assert "log" in message
    assert "expected dict" in message


def test_missing_rest_url_is_rejected(tmp_path: Path) -> None:
    text = FEED.replace('rest_url = "http://127.0.0.1:8765"\n', "") + STRATEGY

    message = config_error(tmp_path, text)

    assert "[feed] needs rest_url and ws_url" in message


def test_missing_feed_section_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, STRATEGY)

    assert "[feed] needs rest_url and ws_url" in message


@pytest.mark.parametrize("symbols", ["[]", '[""]'], ids=["empty-list", "empty-name"])
def test_empty_symbols_are_rejected(tmp_path: Path, symbols: str) -> None:
    text = FEED.replace('["BTCUSDT"]', symbols) + STRATEGY

    message = config_error(tmp_path, text)

    assert "symbols must be a non-empty list" in message


def test_an_interval_that_is_no_kline_interval_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + 'interval = "7m"\n' + STRATEGY)

    assert "interval must be one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d" in message
    assert "got '7m'" in message


@pytest.mark.parametrize(("interval", "max_age"), [("1m", 150.0), ("1h", 9000.0), ("1d", 216000.0)])
def test_a_coarser_feed_is_accepted_and_waits_longer_for_its_bars(
    tmp_path: Path, interval: str, max_age: float
) -> None:
    config = load_text(tmp_path, FEED + f'interval = "{interval}"\n' + STRATEGY)

    assert config.feed.interval == interval
    assert config.max_bar_age_seconds == max_age  # 2.5 bars


def test_the_data_dir_is_taken_from_the_config_files_folder(tmp_path: Path) -> None:
    config = load_text(tmp_path, FEED + 'data_dir = "market"\n' + STRATEGY)

    assert config.data_dir == tmp_path / "market"
    assert load_text(tmp_path, FEED + STRATEGY).data_dir is None


@pytest.mark.parametrize("warmup", [1001, -1])
def test_warmup_bars_outside_zero_to_thousand_is_rejected(tmp_path: Path, warmup: int) -> None:
    message = config_error(tmp_path, FEED + f"warmup_bars = {warmup}\n" + STRATEGY)

    assert f"warmup_bars must be in [0, 1000], got {warmup}" in message


def test_warmup_bars_at_the_limits_are_accepted(tmp_path: Path) -> None:
    assert load_text(tmp_path, FEED + "warmup_bars = 1000\n" + STRATEGY).warmup_bars == 1000
    assert load_text(tmp_path, FEED + "warmup_bars = 0\n" + STRATEGY).warmup_bars == 0


def test_non_positive_feed_timing_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + "heartbeat_seconds = 0\n" + STRATEGY)

    assert "heartbeat_seconds must be > 0" in message


def test_config_without_any_strategy_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED)

    assert "needs at least one [[strategy]]" in message


def test_unknown_strategy_name_is_rejected_with_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY.replace('"sma_cross"', '"sma_cros"'))

    assert "[[strategy]] #1" in message
    assert "unknown strategy 'sma_cros'" in message
    assert "did you mean 'sma_cross'?" in message


def test_strategy_table_without_strategy_key_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + '[[strategy]]\nsymbol = "BTCUSDT"\n')

    assert "missing 'strategy'" in message


def test_unknown_strategy_parameter_is_rejected_with_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + "params = { fats = 5 }\n")

    assert "[[strategy]] #1" in message
    assert "unknown parameter 'fats'" in message
    assert "did you mean 'fast'?" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("{ fast = 30, slow = 10 }", "slow (10) must be greater than fast (30)"),
        ("{ fast = 0 }", "fast must be >= 1"),
        ("{ stop_loss_pct = 100.0 }", "stop_loss_pct must be in [0, 100)"),
        ('{ timeframe = "7m" }', "timeframe '7m' is not one of"),
    ],
    ids=["slow-below-fast", "fast-zero", "stop-loss-100", "bad-timeframe"],
)
def test_out_of_range_strategy_parameter_is_rejected(
    tmp_path: Path, params: str, expected: str
) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f"params = {params}\n")

    assert "[[strategy]] #1" in message
    assert expected in message


def test_strategy_parameter_of_the_wrong_type_is_a_config_error(tmp_path: Path) -> None:
    # An integer parameter given as a TOML float must be reported like any other bad value,
    # not escape load_config as a bare ValueError (a traceback from `barbus run`).
    message = config_error(tmp_path, FEED + STRATEGY + "params = { fast = 5.5 }\n")

    assert "[[strategy]] #1" in message
    assert "fast" in message


def test_strategy_on_a_symbol_the_feed_does_not_carry_is_rejected(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, FEED + STRATEGY.replace('symbol = "BTCUSDT"', 'symbol = "ETHUSDT"')
    )

    assert "symbol ETHUSDT is not in [feed] symbols ['BTCUSDT']" in message


def test_duplicate_strategy_names_are_rejected(tmp_path: Path) -> None:
    second = STRATEGY.replace('"sma_cross"', '"metatrend"')

    message = config_error(tmp_path, FEED + STRATEGY + second)

    assert "[[strategy]] #2" in message
    assert "a strategy named 'sma-btc' already exists" in message


def test_two_unnamed_strategies_of_the_same_kind_and_symbol_clash(tmp_path: Path) -> None:
    unnamed = '[[strategy]]\nstrategy = "sma_cross"\nsymbol = "BTCUSDT"\n'

    message = config_error(tmp_path, FEED + unnamed + unnamed)

    assert "'sma_cross-btcusdt' already exists" in message


@pytest.mark.parametrize("capital", ["0", "-100.5"])
def test_capital_not_above_zero_is_rejected(tmp_path: Path, capital: str) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + f"capital = {capital}\n")

    assert "[[strategy]] #1" in message
    assert "capital must be > 0" in message


@pytest.mark.parametrize("capital", ["nan", "inf"])
def test_non_finite_capital_is_rejected_by_load_config(tmp_path: Path, capital: str) -> None:
    # TOML has nan and inf; `capital <= 0` lets both through to the daemon's start-up.
    message = config_error(tmp_path, FEED + STRATEGY + f"capital = {capital}\n")

    assert "[[strategy]] #1" in message
    assert "capital" in message


def test_bad_execution_settings_are_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + '[execution]\nfill_at = "open"\n')

    assert "fill_at must be 'next_open' or 'close'" in message


def test_http_port_out_of_range_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + "[http]\nport = 70000\n")

    assert "[http] port must be in [0, 65535]" in message


def test_bad_log_level_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + STRATEGY + '[log]\nlevel = "LOUD"\n')

    assert "[log] level 'LOUD' is not a logging level" in message


def test_invalid_toml_is_rejected_naming_the_file(tmp_path: Path) -> None:
    message = config_error(tmp_path, FEED + "symbols = [\n")

    assert str(tmp_path / "barbus.toml") in message
    assert "not valid TOML" in message


def test_missing_file_is_rejected_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"

    with pytest.raises(ConfigError, match="no such config file") as caught:
        load_config(missing)

    assert str(missing) in str(caught.value)


def test_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[log]\nlevel = "\xe9"\n')

    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


# -- accounts --------------------------------------------------------------------------------

TWO_SYMBOLS = FEED.replace('symbols = ["BTCUSDT"]', 'symbols = ["BTCUSDT", "ETHUSDT"]')
POOL = """
[[account]]
name = "pool"
cash = 25000
allow_short = true
"""


def test_strategies_share_an_account_and_take_its_cash_and_shorts(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        TWO_SYMBOLS
        + POOL
        + """
[execution]
fee_bps = 10
maker_fee_bps = 2

[[strategy]]
name = "a"
strategy = "sma_cross"
symbol = "BTCUSDT"
account = "pool"

[[strategy]]
name = "b"
strategy = "sma_cross"
symbol = "ETHUSDT"
capital = 5000
""",
    )
    a, b = config.strategies
    assert (a.account, b.account) == ("pool", None)
    pooled, own = config.execution_for(a), config.execution_for(b)
    assert (pooled.starting_cash, pooled.allow_short) == (25_000.0, True)
    assert (own.starting_cash, own.allow_short) == (5_000.0, False)
    assert (pooled.maker_bps, pooled.taker_bps) == (2.0, 10.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('account = "poll"', "account 'poll' is no [[account]]; did you mean 'pool'?"),
        ('account = "pool"\ncapital = 1000', "capital belongs to the [[account]] 'pool'"),
        ('account = "pool"\nallow_short = true', "allow_short belongs to the [[account]] 'pool'"),
    ],
)
def test_a_strategy_on_a_shared_account_is_checked(
    tmp_path: Path, extra: str, message: str
) -> None:
    assert message in config_error(tmp_path, FEED + POOL + STRATEGY + extra + "\n")


def test_account_names_are_unique_and_apart_from_strategy_names(tmp_path: Path) -> None:
    assert "already used" in config_error(tmp_path, FEED + POOL + POOL + STRATEGY)
    clash = STRATEGY.replace('name = "sma-btc"', 'name = "pool"')
    assert "names an [[account]] too" in config_error(tmp_path, FEED + POOL + clash)
    assert "cash must be > 0" in config_error(
        tmp_path, FEED + POOL.replace("25000", "0") + STRATEGY
    )
