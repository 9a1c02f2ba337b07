"""Whether a strategy's saved record still matches its ``[[strategy]]`` table.

What decides an engine's trades is recorded with it (:func:`engine_config`), so a restart can
refuse, with one line, a strategy whose spec, code or settings changed, and parity can redo the
trades from the record alone. Apart from the restore because the same mapping is written on
every commit by the per-bar path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from barbus.daemon.config import StrategyConfig
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import ConfigError, StrategyError
from barbus.strategies import StrategySource, resolve_strategy

__all__ = ["check_record", "engine_config"]


def engine_config(cfg: StrategyConfig, execution: ExecutionConfig) -> dict[str, Any]:
    """Everything that decides an engine's trades; stored so replay (parity) can redo them.
    Settings added after the first release are stored only when not at their default, so a
    record of an older release still matches a config that does not use them."""
    config: dict[str, Any] = {
        "strategy": cfg.spec,
        "fingerprint": cfg.fingerprint,
        "symbol": cfg.symbol,
        "capital": cfg.capital,
        "params": dict(sorted(cfg.params.items())),
        "fee_bps": execution.fee_bps,
        "slippage_bps": execution.slippage_bps,
        "fill_at": execution.fill_at,
    }
    if cfg.account is not None:
        config["account"] = cfg.account
        del config["capital"]  # the account's, recorded with it
    elif cfg.allow_short:
        config["allow_short"] = True
    if execution.maker_fee_bps is not None:
        config["maker_fee_bps"] = execution.maker_fee_bps
    if execution.taker_fee_bps is not None:
        config["taker_fee_bps"] = execution.taker_fee_bps
    return config


def check_record(
    cfg: StrategyConfig, saved: dict[str, Any], wanted: dict[str, Any], base: Path | None
) -> str | None:
    """Refuse, with one line, a strategy whose spec, code or settings changed since its
    record was saved. Says why the record is to be rewritten: ``"older"`` when it predates
    specs and fingerprints (its ``strategy`` is the spec as written then, resolved from
    ``base``, the config's folder), ``"moved"`` when the same class with the same code is now
    at another path (a moved folder); else None."""
    old_spec = saved.get("strategy")
    legacy = "fingerprint" not in saved
    moved = (
        not legacy
        and isinstance(old_spec, str)
        and old_spec != cfg.spec
        and saved.get("fingerprint") == cfg.fingerprint
        and old_spec.rpartition(":")[2] == cfg.spec.rpartition(":")[2]
    )
    over = "to start it over, give it a new [[strategy]] name (or use a new state file)"
    if old_spec != cfg.spec and not moved and not (legacy and _same_spec(old_spec, cfg.spec, base)):
        raise ConfigError(
            f"strategy {cfg.name!r} was saved running another strategy: spec {old_spec} "
            f"-> {cfg.spec}; {over}, or point it back at {old_spec}"
        )
    fingerprint = saved.get("fingerprint")
    if not legacy and fingerprint != cfg.fingerprint:
        code = _code_file(cfg.source)
        raise ConfigError(
            f"strategy {cfg.name!r}: its code changed since it was saved: fingerprint "
            f"{fingerprint} -> {cfg.fingerprint} of {code}; {over}, or restore {code} "
            "as it was"
        )
    before, now = _settings(saved), _settings(wanted)
    if before != now:
        raise ConfigError(
            f"strategy {cfg.name!r} was saved with {before}, but is now configured as "
            f"{now}; give it a new name (or use a new state file) instead of changing a "
            "running strategy"
        )
    if legacy:
        return "older"
    return "moved" if moved else None


def _same_spec(written: object, spec: str, base: Path | None) -> bool:
    """Whether a spec as an older barbus recorded it resolves to ``spec`` now."""
    if not isinstance(written, str):
        return False
    try:
        return resolve_strategy(written, base).spec == spec
    except StrategyError:
        return False


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded engine configuration without the strategy's identity (spec, fingerprint)."""
    return {k: v for k, v in config.items() if k not in ("strategy", "fingerprint")}


def _code_file(source: StrategySource) -> str:
    """The file whose text the fingerprint is of (the strategy's module)."""
    module = sys.modules.get(source.cls.__module__)
    return str(getattr(module, "__file__", None) or source.origin)
