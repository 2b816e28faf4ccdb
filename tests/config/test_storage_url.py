"""``storage.url`` and ``redis.url``: defaults, the environment, bad schemes; the doctor's
storage and Redis checks (the password never printed)."""

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nexflow.config import ConfigError, load_config
from nexflow.doctor import Check, _database, _redis, _redis_ping
from nexflow.storage.engine import PostgresEngine, SQLiteEngine
from nexflow.storage.open import storage_for
from nexflow.testing.postgres import Postgres


def problems(exc: ConfigError) -> dict[str, str]:
    return {p.path: p.message for p in exc.problems}


def test_default_is_the_sqlite_file_in_home(tmp_path: Path) -> None:
    config = load_config(None, {"NEXFLOW_HOME": str(tmp_path)})
    assert config.storage.url is None
    assert config.storage_url == f"sqlite:///{tmp_path.resolve() / 'nexflow.db'}"
    assert not config.uses_postgres
    assert config.redis.url is None
    engine = storage_for(config).engine
    assert isinstance(engine, SQLiteEngine)
    assert engine.path == tmp_path.resolve() / "nexflow.db"


def test_default_honours_storage_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "gw.db"
    config = load_config(None, {"NEXFLOW_HOME": str(tmp_path), "NEXFLOW_STORAGE__PATH": str(other)})
    assert config.storage_url == f"sqlite:///{other}"
    assert config.database_path == other


def test_sqlite_url_names_the_database_path(tmp_path: Path) -> None:
    config = load_config(
        None,
        {"NEXFLOW_HOME": str(tmp_path), "NEXFLOW_STORAGE__URL": f"sqlite:///{tmp_path}/x.db"},
    )
    assert config.database_path == tmp_path / "x.db"
    assert isinstance(storage_for(config).engine, SQLiteEngine)


def test_postgres_url_from_the_environment(tmp_path: Path) -> None:
    url = "postgresql://nexflow:pw@db.internal:5432/nexflow"
    config = load_config(
        None,
        {
            "NEXFLOW_HOME": str(tmp_path),
            "NEXFLOW_STORAGE__URL": url,
            "NEXFLOW_STORAGE__THREADS": "2",
            "NEXFLOW_REDIS__URL": "redis://:secret@cache:6379/0",
        },
    )
    assert config.storage_url == url and config.uses_postgres
    assert config.storage.threads == 2
    assert config.redis.url == "redis://:secret@cache:6379/0"
    # the SQLite file stays where a migration reads it from
    assert config.database_path == tmp_path / "nexflow.db"
    engine = storage_for(config).engine
    assert isinstance(engine, PostgresEngine) and engine.url == url
    # DBOS goes to the same database unless flows.database_url says otherwise
    assert config.flows_database_url == url


def test_yaml_url_is_overridden_by_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("storage:\n  url: sqlite:///a.db\n")
    config = load_config(path, {"NEXFLOW_STORAGE__URL": "postgres://u@h/db"})
    assert config.storage_url == "postgres://u@h/db"


def test_flows_database_stays_its_own_when_set_or_on_sqlite(tmp_path: Path) -> None:
    config = load_config(None, {"NEXFLOW_HOME": str(tmp_path)})
    assert config.flows_database_url == f"sqlite:///{(tmp_path / 'flows.sqlite3').resolve()}"
    config = load_config(
        None,
        {
            "NEXFLOW_HOME": str(tmp_path),
            "NEXFLOW_STORAGE__URL": "postgresql://u@h/db",
            "NEXFLOW_FLOWS__DATABASE_URL": "postgresql://u@h/flows",
        },
    )
    assert config.flows_database_url == "postgresql://u@h/flows"


@pytest.mark.parametrize(
    "url",
    ["mysql://root:hunter2@db/nexflow", "sqlite://relative.db", "nexflow.db", "sqlite:///"],
)
def test_bad_scheme_is_refused_clearly(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"NEXFLOW_HOME": str(tmp_path), "NEXFLOW_STORAGE__URL": url})
    message = problems(caught.value)["storage.url"]
    assert "sqlite:///" in message
    assert "hunter2" not in caught.value.render()


def test_bad_redis_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            None, {"NEXFLOW_HOME": str(tmp_path), "NEXFLOW_REDIS__URL": "http://:pw@cache:6379"}
        )
    assert "redis://" in problems(caught.value)["redis.url"]
    assert ":pw@" not in caught.value.render()


# -- doctor ---------------------------------------------------------------------------


def test_doctor_reports_postgres_without_the_password(
    pg_server: Postgres, pg_url: str, tmp_path: Path
) -> None:
    config = load_config(None, {"NEXFLOW_HOME": str(tmp_path), "NEXFLOW_STORAGE__URL": pg_url})
    check = _database(config)
    assert check.ok, check.detail
    assert check.detail.startswith("Postgres postgresql://postgres:***@")
    assert "no tables yet" in check.detail
    assert "s3cret" not in check.render()

    async def migrate() -> None:
        storage = storage_for(config)
        await storage.open()
        await storage.close()

    asyncio.run(migrate())
    assert "schema version" in _database(config).detail


def test_doctor_fails_on_an_unreachable_postgres(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://nexflow:topsecret@127.0.0.1:{port}/nexflow"
    config = load_config(None, {"NEXFLOW_HOME": str(tmp_path), "NEXFLOW_STORAGE__URL": url})
    check = _database(config)
    assert not check.ok and "cannot connect" in check.detail
    assert "topsecret" not in check.render()
    assert "NEXFLOW_STORAGE__URL" in check.render()


@pytest.fixture
def fake_redis() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server answering RESP: AUTH with 'pw' and PING."""
    server = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(4096)
                heard.append(data)
                replies = b""
                if b"AUTH" in data:
                    replies += b"+OK\r\n" if b"$2\r\npw\r\n" in data else b"-WRONGPASS bad\r\n"
                replies += b"+PONG\r\n"
                conn.sendall(replies)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], heard
    server.close()
    thread.join(timeout=5)


def test_doctor_pings_redis_over_a_socket(fake_redis: tuple[int, list[bytes]]) -> None:
    """Without the ``redis`` package the doctor speaks RESP itself."""
    port, heard = fake_redis
    assert _redis_ping(f"redis://:pw@127.0.0.1:{port}/0") == (True, "PONG")
    assert heard[-1].startswith(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n")

    ok, detail = _redis_ping(f"redis://:wrong@127.0.0.1:{port}/0")
    assert not ok and detail.startswith("WRONGPASS")
    assert _redis_ping(f"redis://127.0.0.1:{port}") == (True, "PONG")
    assert heard[-1] == b"*1\r\n$4\r\nPING\r\n"


def test_doctor_redis_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for check in (_redis(f"redis://:pw@127.0.0.1:{port}"), _check(_redis_ping, port)):
        assert not check.ok and "cannot connect" in check.detail
        assert "pw@" not in check.render()
    assert "NEXFLOW_REDIS__URL" in _redis(f"redis://127.0.0.1:{port}").render()


def _check(ping: Callable[[str], tuple[bool, str]], port: int) -> Check:
    ok, detail = ping(f"redis://:pw@127.0.0.1:{port}")
    return Check(ok, "redis", detail)
