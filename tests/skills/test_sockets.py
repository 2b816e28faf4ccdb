"""Host-control sockets are covered in the sandbox unless a skill names them (`sockets:`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from skills_support import MakeSkill, runner_for

from nexflow.skills import load_skill
from nexflow.skills.isolation import IsolationLevel, hidden_sockets

PROBE = """\
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1] if len(sys.argv) > 1 else __import__("os").environ["SKILL_ARG_PATH"])
    print(json.dumps({"connected": True}))
except OSError as e:
    print(json.dumps({"connected": False, "error": type(e).__name__}))
"""


@pytest.fixture
def host_socket() -> Iterator[Path]:
    """A listening socket outside /tmp (private in the sandbox) and the workspace."""
    path = Path("/run") / f"nexflow-test-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)
    server.settimeout(0.1)
    try:
        yield path
    finally:
        server.close()
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("level", [IsolationLevel.NAMESPACES, IsolationLevel.BWRAP])
async def test_a_skill_reaches_a_host_socket_only_when_it_names_it(
    make_skill: MakeSkill, workspace: Path, host_socket: Path, level: IsolationLevel
) -> None:
    runner = runner_for(level, privileged_sockets=[str(host_socket)])
    if await runner.isolation_level() is not level:
        pytest.fail(f"{level} is not available on this host")  # CI runs as root: it is
    plain = load_skill(make_skill("plain", script=PROBE, script_name="probe.py"))
    result = await runner.run(plain, {"path": str(host_socket)}, workspace=workspace)
    assert result.ok, (result.error, result.stderr_tail)
    assert result.data["connected"] is False
    named = load_skill(
        make_skill(
            "named", script=PROBE, script_name="probe.py", extra={"sockets": [str(host_socket)]}
        )
    )
    result = await runner.run(named, {"path": str(host_socket)}, workspace=workspace)
    assert result.ok, (result.error, result.stderr_tail)
    assert result.data["connected"] is True


def test_only_existing_sockets_not_asked_for_are_hidden(tmp_path: Path) -> None:
    there = tmp_path / "a.sock"
    there.touch()
    candidates = [str(there), str(tmp_path / "missing.sock")]
    assert hidden_sockets([], candidates) == (there.resolve(),)
    assert hidden_sockets([str(there)], candidates) == ()
