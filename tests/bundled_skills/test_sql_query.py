"""sql-query through the real SkillRunner on SQLite files, and through the gateway."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_tools import start_postgres

from nexflow.skills.isolation import IsolationLevel


def make_db(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        conn.executemany(
            "INSERT INTO customers (name, city) VALUES (?, ?)",
            [("Ada", "Lyon"), ("Grace", "Paris"), ("Linus", "Lyon"), ("Edsger", None)],
        )
        conn.execute("CREATE TABLE blobs (data BLOB)")
        conn.execute("INSERT INTO blobs VALUES (x'00ff10')")
    conn.close()
    return path


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT count(*) FROM customers").fetchone()
    conn.close()
    return int(n)


def db_env(workspace: Path, level: IsolationLevel) -> tuple[dict[str, str], Path]:
    """In a sandbox only the workspace is visible under /tmp: the file goes there."""
    if level is IsolationLevel.NONE:
        path = make_db(workspace.parent / "data" / "shop.db")
        return {"SQL_DATABASES": f"shop=sqlite://{path}, other=sqlite:///nowhere.db"}, path
    path = make_db(workspace / "db" / "shop.db")
    return {"SQL_DATABASES": "shop=sqlite:///./db/shop.db"}, path


async def test_select_with_params(workspace: Path, level: IsolationLevel) -> None:
    env, _ = db_env(workspace, level)
    query = "SELECT id, name, city FROM customers WHERE city = ? OR city IS NULL ORDER BY id"
    r = await run_skill(
        "sql-query",
        {"database": "shop", "query": query, "params": ["Lyon"]},
        workspace,
        secrets=env,
        level=level,
    )
    assert r.ok, r.stderr_tail
    assert r.data["columns"] == ["id", "name", "city"]
    assert r.data["rows"] == [[1, "Ada", "Lyon"], [3, "Linus", "Lyon"], [4, "Edsger", None]]
    assert r.data["row_count"] == 3 and r.data["truncated"] is False


async def test_rows_are_capped_and_blobs_encoded(workspace: Path) -> None:
    env, _ = db_env(workspace, IsolationLevel.NONE)
    r = await run_skill(
        "sql-query",
        {"database": "shop", "query": "SELECT name FROM customers", "max_rows": 2},
        workspace,
        secrets=env,
    )
    assert r.data["rows"] == [["Ada"], ["Grace"]] and r.data["truncated"] is True
    r = await run_skill(
        "sql-query", {"database": "shop", "query": "SELECT data FROM blobs"}, workspace, secrets=env
    )
    assert r.data["rows"] == [[{"base64": "AP8Q", "bytes": 3}]]


async def test_writes_are_refused_by_default(workspace: Path, level: IsolationLevel) -> None:
    env, path = db_env(workspace, level)
    for query, why in (
        ("DELETE FROM customers", "opened read-only"),
        ("CREATE TABLE t (x)", "opened read-only"),
        ("PRAGMA query_only = OFF", "setting a PRAGMA without"),
        (f"VACUUM INTO '{workspace}/copy.db'", "ATTACH, VACUUM INTO"),
    ):
        payload = {"database": "shop", "query": query}
        r = await run_skill("sql-query", payload, workspace, secrets=env, level=level)
        assert not r.ok and r.exit_code == 2, r.stderr_tail
        assert why in r.stderr_tail
    assert not (workspace / "copy.db").exists()
    r = await run_skill(
        "sql-query",
        {"database": "shop", "query": "DELETE FROM customers", "write": True},
        workspace,
        secrets=env,
        level=level,
    )
    assert r.exit_code == 2 and "is not allowed: the admin lists it in SQL_ALLOW_WRITE" in (
        r.stderr_tail
    )
    assert count(path) == 4


async def test_allowed_write(workspace: Path) -> None:
    env, path = db_env(workspace, IsolationLevel.NONE)
    env["SQL_ALLOW_WRITE"] = "shop"
    payload = {"database": "shop", "query": "DELETE FROM customers WHERE city = 'Lyon'"}
    r = await run_skill("sql-query", payload, workspace, secrets=env)
    assert r.exit_code == 2 and count(path) == 4  # the call must say write: true too
    r = await run_skill("sql-query", {**payload, "write": True}, workspace, secrets=env)
    assert r.ok, r.stderr_tail
    assert r.data["changes"] == 2 and count(path) == 2


async def test_attach_is_denied(workspace: Path) -> None:
    env, _ = db_env(workspace, IsolationLevel.NONE)
    env["SQL_ALLOW_WRITE"] = "shop"
    target = workspace / "new.db"
    payload = {"database": "shop", "query": f"ATTACH '{target}' AS x", "write": True}
    r = await run_skill("sql-query", payload, workspace, secrets=env)
    assert "not allowed here (ATTACH" in refusal(r)
    assert not target.exists()


async def test_timeout_interrupts_a_long_query(workspace: Path) -> None:
    env, _ = db_env(workspace, IsolationLevel.NONE)
    query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    payload = {"database": "shop", "query": query, "timeout_sec": 0.5}
    r = await run_skill("sql-query", payload, workspace, secrets=env)
    assert r.exit_code == 1
    assert "sql-query: timed out: the query ran longer than 0.5 s" in r.stderr_tail


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"database": "hr", "query": "SELECT 1"}, "database 'hr' is not configured"),
        ({"database": "other", "query": "SELECT 1"}, "does not exist"),
        ({"database": "shop", "query": "SELECT 1; SELECT 2"}, "one statement at a time"),
        ({"database": "shop", "query": "SELEKT"}, 'sqlite: near "SELEKT": syntax error'),
        ({"database": "shop", "query": " "}, "'query' must be a non-empty string"),
        ({"database": "shop", "query": "SELECT 1", "max_rows": 0}, "'max_rows' must be"),
    ],
)
async def test_errors_are_clear(workspace: Path, payload: dict[str, object], why: str) -> None:
    env, _ = db_env(workspace, IsolationLevel.NONE)
    r = await run_skill("sql-query", payload, workspace, secrets=env)
    assert not r.ok and why in r.stderr_tail, r.stderr_tail
    assert "Traceback" not in r.stderr_tail


async def test_bad_configuration(workspace: Path) -> None:
    r = await run_skill(
        "sql-query",
        {"database": "x", "query": "SELECT 1"},
        workspace,
        secrets={"SQL_DATABASES": "x=mysql://h/db"},
    )
    assert "only sqlite:// and postgresql:// URLs work" in refusal(r)


async def test_through_the_gateway(home: Path) -> None:
    path = make_db(home / "workspace" / "db" / "shop.db")
    env = {"SQL_DATABASES": "shop=sqlite:///./db/shop.db"}
    async with skill_gateway(home, {"sql-query": env}) as gw:
        payload = {"database": "shop", "query": "SELECT name FROM customers WHERE id = 2"}
        _, tool_msg, _ = await call_skill(gw, "sql-query", payload)
        assert tool_json(tool_msg)["rows"] == [["Grace"]]
        assert 'trust="untrusted"' in tool_msg
    assert count(path) == 4


async def test_write_through_the_gateway_waits_for_the_user(home: Path) -> None:
    path = make_db(home / "workspace" / "db" / "shop.db")
    env = {"SQL_DATABASES": "shop=sqlite:///./db/shop.db", "SQL_ALLOW_WRITE": "shop"}
    payload = {"database": "shop", "query": "DELETE FROM customers WHERE id = 1", "write": True}
    async with skill_gateway(home, {"sql-query": env}) as gw:
        _, tool_msg, card = await call_skill(gw, "sql-query", payload, approve=False)
        assert card is not None and "DELETE FROM customers" in card["detail"]
        assert "declined" in tool_msg and count(path) == 4
        _, tool_msg, _ = await call_skill(gw, "sql-query", payload, approve=True)
        assert tool_json(tool_msg)["changes"] == 1 and count(path) == 3


# -- PostgreSQL: a real server (scripts/setup.sh installs Postgres for make test) --


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    server = start_postgres()
    if server is None:
        pytest.fail("PostgreSQL server binaries are missing: make test installs them (postgresql)")
    try:
        admin = {"SQL_DATABASES": f"pg={server.url}", "SQL_ALLOW_WRITE": "pg"}
        setup = (
            "CREATE TABLE notes (id int PRIMARY KEY, body text, owner text);"
            "INSERT INTO notes VALUES (1, 'first line' || chr(10) || 'second line', 'ada'),"
            " (2, 'pipes | and ; semicolons', NULL)"
        )
        done = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url, "-c", setup],
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        yield admin["SQL_DATABASES"]
    finally:
        server.stop()


def pg_count(databases: str) -> int:
    url = databases.partition("=")[2]
    done = subprocess.run(
        ["psql", "-X", "-A", "-t", "-d", url, "-c", "SELECT count(*) FROM notes"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return int(done.stdout)


async def test_postgres_select(workspace: Path, postgres: str, level: IsolationLevel) -> None:
    payload = {"database": "pg", "query": "SELECT id, body, owner FROM notes ORDER BY id"}
    r = await run_skill(
        "sql-query", payload, workspace, secrets={"SQL_DATABASES": postgres}, level=level
    )
    assert r.ok, r.stderr_tail
    assert r.data["columns"] == ["id", "body", "owner"]
    assert r.data["rows"] == [
        ["1", "first line\nsecond line", "ada"],
        ["2", "pipes | and ; semicolons", None],
    ]
    assert "s3cret" not in r.output  # the password is never echoed


async def test_postgres_is_read_only_by_default(workspace: Path, postgres: str) -> None:
    env = {"SQL_DATABASES": postgres}
    for query in (
        "DELETE FROM notes",
        "SELECT 1; DELETE FROM notes",
        "SELECT 1 /* ; */ ; COMMIT; DELETE FROM notes",
        "  \\! touch pwned",
    ):
        r = await run_skill("sql-query", {"database": "pg", "query": query}, workspace, secrets=env)
        assert r.exit_code == 2, r.stderr_tail
    r = await run_skill(
        "sql-query",
        {"database": "pg", "query": "SELECT 'a;b' AS x, $$c;d$$ AS y -- ; trailing\n;"},
        workspace,
        secrets=env,
    )
    assert r.ok and r.data["rows"] == [["a;b", "c;d"]], r.stderr_tail
    assert pg_count(postgres) == 2
    assert not (workspace / "pwned").exists()


async def test_postgres_allowed_write(workspace: Path, postgres: str) -> None:
    env = {"SQL_DATABASES": postgres, "SQL_ALLOW_WRITE": "pg"}
    query = "INSERT INTO notes VALUES (3, 'from the skill', 'nexflow')"
    r = await run_skill(
        "sql-query", {"database": "pg", "query": query, "write": True}, workspace, secrets=env
    )
    assert r.ok, r.stderr_tail
    assert pg_count(postgres) == 3


async def test_postgres_statement_timeout(workspace: Path, postgres: str) -> None:
    payload = {"database": "pg", "query": "SELECT pg_sleep(5)", "timeout_sec": 0.5}
    r = await run_skill("sql-query", payload, workspace, secrets={"SQL_DATABASES": postgres})
    assert "ran longer than 0.5 s" in failure(r)


async def test_postgres_bad_password(workspace: Path, postgres: str) -> None:
    env = {"SQL_DATABASES": postgres.replace("s3cret%20pw", "wrong")}
    r = await run_skill(
        "sql-query", {"database": "pg", "query": "SELECT 1"}, workspace, secrets=env
    )
    assert "password authentication failed" in failure(r)
