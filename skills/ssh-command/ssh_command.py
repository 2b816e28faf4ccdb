"""ssh-command: run one command on a host the admin configured, with the ``ssh`` client.

Hosts come from SSH_HOSTS (``name=user@host[:port]`` entries); the key is SSH_KEY_FILE
and the host keys are checked against SSH_KNOWN_HOSTS only (StrictHostKeyChecking=yes,
BatchMode=yes, no agent, no forwarding, no config file). The command goes to ``ssh`` as
one argument after the destination: no local shell ever sees it (the remote user's login
shell runs it, as with any ``ssh host command``).
"""

import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import prockit
import skillkit

MAX_COMMAND = 8000
TIMEOUT_DEFAULT = 30.0
TIMEOUT_LIMIT = 50.0
STDOUT_CAP = 128 * 1024
STDERR_TAIL = 4 * 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))$")


def hosts():
    """``{name: (user, host, port)}`` from SSH_HOSTS."""
    found = {}
    for entry in re.split(r"[\s,;]+", skillkit.env("SSH_HOSTS")):
        if not entry:
            continue
        name, _, target = entry.partition("=")
        user, at, rest = target.partition("@")
        host, port = rest, "22"
        if rest.startswith("["):
            host, _, tail = rest.partition("]")
            host += "]"
            port = tail.removeprefix(":") or "22"
        elif ":" in rest:
            host, _, port = rest.rpartition(":")
        if not (NAME.match(name) and at and USER.match(user) and HOST.match(host)):
            raise skillkit.Refused(f"SSH_HOSTS entry {entry!r} is not name=user@host[:port]")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise skillkit.Refused(f"SSH_HOSTS entry {entry!r} has a bad port")
        found[name] = (user, host.strip("[]"), int(port))
    return found


def readable_file(variable):
    path = Path(skillkit.env(variable))
    if not path.is_absolute():
        raise skillkit.Refused(f"{variable} must be an absolute path")
    if not path.is_file():
        raise skillkit.Failed(
            f"{variable} {path} is not a readable file here (the sandbox hides the Nexflow "
            "home, $HOME and /tmp: keep it elsewhere, e.g. /etc/nexflow/ssh/)"
        )
    return path


def settings(args):
    name = args.get("host")
    command = args.get("command")
    if not isinstance(name, str) or not name:
        raise skillkit.Refused("'host' must name one of the configured hosts")
    if not isinstance(command, str) or not command.strip():
        raise skillkit.Refused("'command' must be a non-empty string")
    if len(command) > MAX_COMMAND or "\0" in command:
        raise skillkit.Refused(f"'command' must be at most {MAX_COMMAND} characters, without NUL")
    timeout = skillkit.positive_number(args, "timeout_sec", TIMEOUT_DEFAULT, most=TIMEOUT_LIMIT)
    return name, command, timeout


def ssh_argv(ssh, user, host, port, key, known_hosts, command):
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "ForwardAgent": "no",
        "ForwardX11": "no",
        "ClearAllForwardings": "yes",
        "PermitLocalCommand": "no",
        "ControlMaster": "no",
        "ControlPath": "none",
        "ConnectTimeout": "10",
        "ServerAliveInterval": "10",
        "ServerAliveCountMax": "2",
        "LogLevel": "ERROR",
    }
    argv = [ssh, "-F", "/dev/null", "-T", "-n", "-i", str(key), "-p", str(port), "-l", user]
    for key_, value in options.items():
        argv += ["-o", f"{key_}={value}"]
    return [*argv, "--", host, command]


def run(args):
    name, command, timeout = settings(args)
    known = hosts()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise skillkit.Refused(f"host {name!r} is not in SSH_HOSTS (configured: {listed})")
    user, host, port = known[name]
    key = readable_file("SSH_KEY_FILE")
    known_hosts = readable_file("SSH_KNOWN_HOSTS")
    ssh = shutil.which("ssh")
    if ssh is None:
        raise skillkit.Failed("the ssh client is not installed (apt install openssh-client)")
    got = prockit.capture(
        ssh_argv(ssh, user, host, port, key, known_hosts, command),
        timeout=timeout,
        stdout_cap=STDOUT_CAP,
        stderr_tail=STDERR_TAIL,
    )
    if got.timed_out:
        raise TimeoutError(f"the command on {name!r} ran longer than {timeout:g} s")
    status, truncated = got.code, got.truncated
    err_text = got.stderr.decode("utf-8", "replace")
    if status == 255 and not truncated:
        lines = [ln.strip() for ln in err_text.strip().splitlines() if ln.strip()]
        reason = " ".join(lines[-3:])[:500] or "ssh exited with status 255"
        raise skillkit.Failed(f"ssh to {name!r} ({user}@{host}:{port}) failed: {reason}")
    result = {
        "host": name,
        "exit_status": status,
        "stdout": got.stdout.decode("utf-8", "replace"),
        "stderr_tail": err_text,
        "truncated": truncated,
        "duration_ms": round(got.seconds * 1000, 1),
    }
    if truncated:
        result["note"] = f"output over {STDOUT_CAP // 1024} KB: the connection was closed there"
    return result


if __name__ == "__main__":
    skillkit.main("ssh-command", run)
