"""Every refused open of a state file closes the SQLite connection it made.

Python 3.13 reports an unclosed connection as a ResourceWarning (an error under the project's
warning filter); on every version a leaked connection holds the file open. The test records each
connection ``daemon.state`` makes and, after the refusal, checks that each one is closed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.errors import ConfigError, DataError
from barbus.daemon.state import StateStore
from barbus.daemon.state_schema import SCHEMA_VERSION
from tests.unit.daemon.test_state_damage import DAMAGE, build, run_sql


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    made: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        made.append(connection)
        return connection

    monkeypatch.setattr("barbus.daemon.state.sqlite3.connect", recording_connect)
    return made


def is_closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    connection.close()  # do not leak it from the test either
    return False


CASES: dict[str, tuple[str, ...]] = {
    # (the NULL volume needs the table rebuilt first: test_state_damage does that case)
    **{name: (sql,) for name, (sql, _) in DAMAGE.items() if "NULL" not in name},
    "a newer schema": (f"PRAGMA user_version = {SCHEMA_VERSION + 1}",),
    "an SQLite file of another program": (
        "PRAGMA user_version = 0",
        *(f"DROP TABLE {t}" for t in ("bars", "fills", "trades", "engines", "streams", "meta")),
        "CREATE TABLE other (x)",
    ),
}


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_refused_state_file_leaves_no_connection_open(
    tmp_path: Path, connections: list[sqlite3.Connection], case: str, read_only: bool
) -> None:
    # Arrange
    path = tmp_path / "state.sqlite"
    build(path)
    run_sql(path, *CASES[case])
    connections.clear()

    # Act
    with pytest.raises((DataError, ConfigError)):
        StateStore(path, read_only=read_only)

    # Assert
    assert connections, "the open made no connection: the case tests nothing"
    assert [is_closed(c) for c in connections] == [True] * len(connections)


def test_a_clobbered_header_leaves_no_connection_open(
    tmp_path: Path, connections: list[sqlite3.Connection]
) -> None:
    path = tmp_path / "state.sqlite"
    build(path)
    with path.open("r+b") as handle:
        handle.write(b"\xff" * 100)
    connections.clear()

    with pytest.raises(DataError):
        StateStore(path)

    assert connections
    assert [is_closed(c) for c in connections] == [True] * len(connections)
