"""ssh-command: the real /usr/bin/ssh against an asyncssh server on loopback, through the
SkillRunner (every isolation level) and through the gateway with confirmation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_tools import SSHKeys, SSHServer

from nexflow.skills.isolation import IsolationLevel


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SSHServer]:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "motd.txt").write_text("hello from the server\n")
    srv = await SSHServer(remote).start()
    yield srv
    await srv.stop()


def env_for(server: SSHServer, keys: SSHKeys, extra_hosts: str = "") -> dict[str, str]:
    return {
        "SSH_HOSTS": f"web1=deploy@127.0.0.1:{server.port} {extra_hosts}".strip(),
        "SSH_KEY_FILE": str(keys.key_file),
        "SSH_KNOWN_HOSTS": str(keys.known_hosts),
    }


async def test_runs_the_exact_command(
    workspace: Path, server: SSHServer, level: IsolationLevel
) -> None:
    # In the workspace: a sandboxed skill sees nothing else under /tmp.
    keys = server.keys_for(workspace / ".keys")
    command = "cat motd.txt; echo 'it''s \"quoted\" $HOME' | tr a-z A-Z; echo oops >&2; exit 3"
    r = await run_skill(
        "ssh-command",
        {"host": "web1", "command": command},
        workspace,
        secrets=env_for(server, keys),
        level=level,
    )
    assert r.ok, r.stderr_tail
    assert server.commands == [command]  # one argv element, untouched on our side
    # The remote shell runs the line: '...' keeps $HOME literal, quotes are its business.
    assert r.data["stdout"] == 'hello from the server\nITS "QUOTED" $HOME\n'
    assert r.data["exit_status"] == 3
    assert r.data["stderr_tail"] == "oops\n"
    assert r.data["host"] == "web1" and r.data["truncated"] is False


async def test_host_not_configured_is_refused(workspace: Path, server: SSHServer) -> None:
    keys = server.keys_for(workspace / ".keys")
    env = env_for(server, keys, "backup=admin@127.0.0.1:1")
    for host in ("db9", "127.0.0.1", f"deploy@127.0.0.1:{server.port}"):
        r = await run_skill("ssh-command", {"host": host, "command": "id"}, workspace, secrets=env)
        assert r.exit_code == 2
        assert f"host {host!r} is not in SSH_HOSTS (configured: backup, web1)" in r.stderr_tail
    assert server.commands == []


async def test_a_changed_host_key_is_refused(workspace: Path, server: SSHServer) -> None:
    keys = server.keys_for(workspace / ".keys")
    other = await SSHServer(workspace).start()  # the known key is another server's
    await other.stop()
    host_pub = other.host_key.export_public_key("openssh").decode().strip()
    keys.known_hosts.write_text(f"[127.0.0.1]:{server.port} {host_pub}\n")
    env = env_for(server, keys)
    r = await run_skill("ssh-command", {"host": "web1", "command": "id"}, workspace, secrets=env)
    assert r.exit_code == 1
    assert "ssh-command: failed: ssh to 'web1'" in r.stderr_tail
    assert "Host key verification failed" in r.stderr_tail
    keys.known_hosts.write_text("")  # no key known at all: never trusted on first use
    r = await run_skill("ssh-command", {"host": "web1", "command": "id"}, workspace, secrets=env)
    assert "Host key verification failed" in failure(r)
    assert keys.known_hosts.read_text() == ""
    assert server.commands == []


async def test_a_key_the_server_does_not_know(workspace: Path, server: SSHServer) -> None:
    keys = server.keys_for(workspace / ".keys", authorize=False)
    r = await run_skill(
        "ssh-command", {"host": "web1", "command": "id"}, workspace, secrets=env_for(server, keys)
    )
    assert "Permission denied (publickey)" in failure(r)
    assert server.commands == []


async def test_timeout_kills_the_connection(workspace: Path, server: SSHServer) -> None:
    keys = server.keys_for(workspace / ".keys")
    r = await run_skill(
        "ssh-command",
        {"host": "web1", "command": "sleep 30", "timeout_sec": 1},
        workspace,
        secrets=env_for(server, keys),
    )
    assert r.exit_code == 1
    assert "ssh-command: timed out: the command on 'web1' ran longer than 1 s" in r.stderr_tail


async def test_output_is_capped(workspace: Path, server: SSHServer) -> None:
    keys = server.keys_for(workspace / ".keys")
    r = await run_skill(
        "ssh-command",
        {"host": "web1", "command": "head -c 300000 /dev/zero | tr '\\0' x"},
        workspace,
        secrets=env_for(server, keys),
    )
    assert r.ok and r.data["truncated"] is True
    assert r.data["stdout"] == "x" * 128 * 1024


@pytest.mark.parametrize(
    ("payload", "env_change", "why"),
    [
        ({"host": "web1", "command": ""}, {}, "'command' must be a non-empty string"),
        ({"host": "", "command": "id"}, {}, "'host' must name one of the configured hosts"),
        ({"host": "web1", "command": "id"}, {"SSH_HOSTS": "web1=-oProxyCommand=x@h"}, "is not"),
        ({"host": "web1", "command": "id"}, {"SSH_HOSTS": "web1=u@-oProxy"}, "is not"),
        ({"host": "web1", "command": "id"}, {"SSH_KEY_FILE": "relative/key"}, "absolute path"),
    ],
)
async def test_bad_input_and_settings(
    workspace: Path,
    server: SSHServer,
    payload: dict[str, object],
    env_change: dict[str, str],
    why: str,
) -> None:
    keys = server.keys_for(workspace / ".keys")
    r = await run_skill(
        "ssh-command", payload, workspace, secrets={**env_for(server, keys), **env_change}
    )
    assert "ssh-command: refused: " in refusal(r)
    assert why in r.stderr_tail, r.stderr_tail
    assert server.commands == []


async def test_through_the_gateway_waits_for_the_user(home: Path, server: SSHServer) -> None:
    keys = server.keys_for(home / "workspace" / ".keys")
    async with skill_gateway(home, {"ssh-command": env_for(server, keys)}) as gw:
        payload = {"host": "web1", "command": "cat motd.txt"}
        _, tool_msg, card = await call_skill(gw, "ssh-command", payload, approve=False)
        assert card is not None and "cat motd.txt" in card["detail"]
        assert "declined" in tool_msg and server.commands == []
        _, tool_msg, card = await call_skill(gw, "ssh-command", payload, approve=True)
        assert card is not None and "web1" in card["detail"]
    assert tool_json(tool_msg)["stdout"] == "hello from the server\n"
    assert 'trust="untrusted"' in tool_msg
    assert server.commands == ["cat motd.txt"]
