"""sql-query: one query on a database the admin configured, read-only unless allowed.

Databases come from SQL_DATABASES (``name=sqlite:///path`` or ``name=postgresql://...``,
separated by commas, semicolons or whitespace). SQLite is opened through the standard
library with ``mode=ro`` and ``PRAGMA query_only``; PostgreSQL through the ``psql``
binary with ``default_transaction_read_only=on`` and a statement timeout. A write needs
the database named in SQL_ALLOW_WRITE *and* ``"write": true`` in the call (the gateway
then asks the user first).
"""

import base64
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import skillkit

MAX_QUERY = 20_000
ROWS_DEFAULT = 200
ROWS_LIMIT = 2000
CELL_CHARS = 4000
OUTPUT_BYTES = 512 * 1024
TIMEOUT_DEFAULT = 10.0
TIMEOUT_LIMIT = 25.0
FIELD_SEP, RECORD_SEP, NULL_MARK = "\x1f", "\x1e", "\x1a"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def databases():
    found = {}
    for entry in re.split(r"[\s,;]+", skillkit.env("SQL_DATABASES")):
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        if not sep or not NAME.match(name) or not url:
            raise skillkit.Refused(
                f"SQL_DATABASES entry {entry.split('=')[0]!r} is not name=sqlite:///path "
                "or name=postgresql://..."
            )
        found[name] = url
    return found


def settings(args):
    name = args.get("database")
    query = args.get("query")
    if not isinstance(name, str) or not name:
        raise skillkit.Refused("'database' must name one of the configured databases")
    if not isinstance(query, str) or not query.strip():
        raise skillkit.Refused("'query' must be a non-empty string")
    if len(query) > MAX_QUERY or "\0" in query:
        raise skillkit.Refused(f"'query' must be at most {MAX_QUERY} characters, without NUL")
    rows = skillkit.positive_int(args, "max_rows", ROWS_DEFAULT, most=ROWS_LIMIT)
    timeout = skillkit.positive_number(args, "timeout_sec", TIMEOUT_DEFAULT, most=TIMEOUT_LIMIT)
    params = args.get("params", [])
    if not isinstance(params, list) or not all(
        p is None or isinstance(p, str | int | float) for p in params
    ):
        raise skillkit.Refused("'params' must be a list of strings, numbers or null")
    write = args.get("write", False)
    if not isinstance(write, bool):
        raise skillkit.Refused("'write' must be true or false")
    return name, query, rows, timeout, params, write


def cell(value):
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value[:CELL_CHARS]).decode(), "bytes": len(value)}
    if isinstance(value, str) and len(value) > CELL_CHARS:
        return value[:CELL_CHARS] + "…"
    return value


class Table:
    """Rows collected up to ``max_rows`` and the output budget."""

    def __init__(self, columns, max_rows):
        self.columns = columns
        self.rows = []
        self.max_rows = max_rows
        self.truncated = False
        self.size = len(json.dumps(columns))

    def add(self, row):
        """False when the table is full (the row is not kept)."""
        if len(self.rows) >= self.max_rows:
            self.truncated = True
            return False
        row = [cell(v) for v in row]
        self.size += len(json.dumps(row, ensure_ascii=False)) + 1
        if self.size > OUTPUT_BYTES:
            self.truncated = True
            return False
        self.rows.append(row)
        return True


# -- SQLite ----------------------------------------------------------------------------


def sqlite_path(url):
    rest = url[len("sqlite://") :]
    if not rest.startswith("/"):
        raise skillkit.Refused(f"{url!r}: use sqlite:///absolute/path or sqlite:///./relative")
    path = Path(unquote(rest[1:]) if rest.startswith("/./") else unquote(rest))
    return path if path.is_absolute() else Path.cwd() / path


def authorizer(write):
    """ATTACH (and VACUUM INTO, which attaches) never; setting a PRAGMA only for a write."""

    def check(action, arg1, arg2, *_):
        if action == sqlite3.SQLITE_ATTACH:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and not write:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return check


def sqlite_error(e, timeout):
    """The skillkit error for a sqlite3 error."""
    text = str(e)
    if text == "interrupted":
        return TimeoutError(f"the query ran longer than {timeout:g} s")
    if "readonly" in text or "query_only" in text or "read-only" in text:
        return skillkit.Refused(
            "the database is opened read-only: writing needs the admin's SQL_ALLOW_WRITE "
            'and "write": true'
        )
    if "not authorized" in text or "authorization denied" in text:
        return skillkit.Refused(
            "the query uses something not allowed here (ATTACH, VACUUM INTO, or setting "
            'a PRAGMA without "write": true)'
        )
    return skillkit.Failed(f"sqlite: {text}")


def run_sqlite(url, query, params, max_rows, timeout, write):
    path = sqlite_path(url)
    if not path.is_file():
        raise skillkit.Failed(f"database file {path} does not exist (or is not visible here)")
    mode = "rw" if write else "ro"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode={mode}", uri=True, timeout=timeout)
    except sqlite3.Error as e:
        raise skillkit.Failed(f"cannot open {path}: {e}") from None
    deadline = time.monotonic() + timeout
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        if not write:
            conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(authorizer(write))  # after our own PRAGMA
        cur = conn.execute(query, params)
        columns = [d[0] for d in cur.description or ()]
        table = Table(columns, max_rows)
        while columns and (row := cur.fetchone()) is not None:
            if not table.add(row):
                break
        changed = conn.total_changes
        if write:
            conn.commit()
    except (sqlite3.Error, OverflowError) as e:
        raise sqlite_error(e, timeout) from None
    finally:
        conn.close()
    return table, changed


# -- PostgreSQL ------------------------------------------------------------------------


SKIPPED = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$", re.S
)


def single_statement(query):
    """Refuse a query with more than one statement. Comments, quoted strings and dollar
    quotes are skipped in one left-to-right pass, so a ';' inside them does not count."""
    if query.lstrip().startswith("\\"):
        raise skillkit.Refused("psql meta-commands (starting with a backslash) are not allowed")
    text = SKIPPED.sub(" ", query).strip()
    if ";" in text.rstrip(";").rstrip():
        raise skillkit.Refused("send one SQL statement per call (no ';' between statements)")
    if any(mark in text for mark in ("'", '"', "$$", "/*")):
        raise skillkit.Refused("the query has an unterminated quote or comment")


def psql_target(url):
    """The URL without its password, and the password (given to psql in PGPASSWORD)."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(("postgresql", netloc, parts.path, parts.query, "")), password


def bounded_run(argv, env, timeout):
    """Run ``argv``; stdout is read up to twice the output budget (the table is cut there
    anyway), then the process is stopped; a timer kills it at ``timeout``."""
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    expired = threading.Event()

    def expire():
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    err = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read(64 * 1024)))
    reader.start()
    out = bytearray()
    full = False
    try:
        while chunk := proc.stdout.read(65536):
            out += chunk
            if len(out) > 2 * OUTPUT_BYTES:
                full = True
                proc.kill()
                break
        code = proc.wait()
    finally:
        timer.cancel()
        reader.join()
        proc.stdout.close()
        proc.stderr.close()
    if expired.is_set():
        raise TimeoutError(f"psql did not finish within {timeout:g} s")
    return subprocess.CompletedProcess(argv, 0 if full else code, bytes(out), b"".join(err))


def run_postgres(url, query, params, max_rows, timeout, write):
    if params:
        raise skillkit.Refused("'params' are supported for SQLite only; quote values in the query")
    psql = shutil.which("psql")
    if psql is None:
        raise skillkit.Failed("psql is not installed (apt install postgresql-client)")
    single_statement(query)
    target, password = psql_target(url)
    ms = int(timeout * 1000)
    options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
    if not write:
        options += " -c default_transaction_read_only=on"
    env = {"PATH": os.environ.get("PATH", os.defpath), "PGOPTIONS": options}
    env.update(PGCONNECT_TIMEOUT="10", PGAPPNAME="nexflow-sql-query")
    if password is not None:
        env["PGPASSWORD"] = password
    argv = [psql, "-X", "-q", "-A", "-F", FIELD_SEP, "-R", RECORD_SEP, "-P", "footer=off"]
    argv += ["-P", f"null={NULL_MARK}", "-v", "ON_ERROR_STOP=1", "-d", target, "-c", query]
    done = bounded_run(argv, env, timeout + 5)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        text = " ".join(line.strip() for line in message[:3])[:500]
        if "read-only transaction" in text:
            raise skillkit.Refused(
                "the database is read-only for this call: writing needs the admin's "
                f'SQL_ALLOW_WRITE and "write": true ({text})'
            )
        if "statement timeout" in text:
            raise TimeoutError(f"the query ran longer than {timeout:g} s")
        raise skillkit.Failed(f"psql: {text or f'exit status {done.returncode}'}")
    out = done.stdout.decode("utf-8", "replace").removesuffix("\n")  # psql's final newline
    records = [r for r in out.split(RECORD_SEP) if r != ""]
    if not records:
        return Table([], max_rows), None
    table = Table(records[0].split(FIELD_SEP), max_rows)
    for record in records[1:]:
        values = [None if v == NULL_MARK else v for v in record.split(FIELD_SEP)]
        if not table.add(values):
            break
    return table, None


def run(args):
    name, query, max_rows, timeout, params, write = settings(args)
    known = databases()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise skillkit.Refused(f"database {name!r} is not configured (configured: {listed})")
    if write:
        allowed = re.split(r"[\s,;]+", os.environ.get("SQL_ALLOW_WRITE", ""))
        if name not in allowed:
            raise skillkit.Refused(
                f"writing to {name!r} is not allowed: the admin lists it in SQL_ALLOW_WRITE"
            )
    url = known[name]
    started = time.monotonic()
    if url.startswith("sqlite://"):
        table, changed = run_sqlite(url, query, params, max_rows, timeout, write)
    elif url.startswith(("postgresql://", "postgres://")):
        table, changed = run_postgres(url, query, params, max_rows, timeout, write)
    else:
        raise skillkit.Refused(f"database {name!r}: only sqlite:// and postgresql:// URLs work")
    result = {
        "database": name,
        "columns": table.columns,
        "rows": table.rows,
        "row_count": len(table.rows),
        "truncated": table.truncated,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if write and changed is not None:
        result["changes"] = changed
    return result


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        skillkit.main("sql-query", run)
