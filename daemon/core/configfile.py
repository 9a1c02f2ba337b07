"""Reading TOML files (daemon config, batch specs) with errors a person can act on."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from barbus.daemon.core.errors import ConfigError, did_you_mean

__all__ = ["check_keys", "read_toml"]


def read_toml(path: Path, kind: str) -> dict[str, Any]:
    """Parse ``path``; a missing, unreadable or invalid file is a one-line ConfigError."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {kind} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def check_keys(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Reject a key that is not in ``allowed``, suggesting the closest one."""
    names = sorted(allowed)
    for key in table:
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, names)}")
