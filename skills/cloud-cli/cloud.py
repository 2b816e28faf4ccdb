"""cloud-cli: run read-only aws / gcloud / az commands and return their JSON.

The command is an argv list (never a shell string). Each CLI has an allowlist of read
verbs (aws ``describe-*``/``list-*``/``get-*``; gcloud ``list``/``describe``...; az
``list``/``show``...); anything else is a change, refused unless the admin sets
CLOUD_CLI_ALLOW_WRITE=1, and then only with ``"write": true`` in the input, which makes
the gateway ask the user first. Commands that print credentials or secret values are
refused always.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import prockit
import skillkit

CLIS = ("aws", "gcloud", "az")
WORD = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")
MAX_ARGS = 64
MAX_ARG = 1024
MAX_OUTPUT = 512 * 1024
TIMEOUT_DEFAULT, TIMEOUT_LIMIT = 30, 55

# The output format is ours to set; these would change what is printed or where it goes.
FORBIDDEN_FLAGS = {
    "aws": {"--output", "--debug", "--endpoint-url", "--ca-bundle", "--no-verify-ssl",
            "--cli-input-json", "--cli-input-yaml", "--color"},
    "gcloud": {"--format", "--verbosity", "--log-http", "--flags-file", "--access-token-file",
               "--impersonate-service-account", "--user-output-enabled"},
    "az": {"--output", "-o", "--debug", "--verbose"},
}  # fmt: skip
OUTPUT_FLAGS = {
    "aws": ["--output", "json", "--no-cli-pager"],
    "gcloud": ["--format=json", "--quiet"],
    "az": ["--output", "json", "--only-show-errors"],
}
INSTALL = {
    "aws": "the AWS CLI",
    "gcloud": "the Google Cloud CLI",
    "az": "the Azure CLI",
}

AWS_READ_PREFIXES = ("describe-", "list-", "get-", "batch-get-")
AWS_READ = {"head-object", "head-bucket", "filter-log-events", "lookup-events"}
AWS_NOT_READ = {"get-object", "get-object-torrent"}  # they write a file
AWS_SECRET_SERVICES = {"configure", "sso", "login"}
GCLOUD_READ = {"list", "describe", "get-iam-policy", "get-value", "ls", "read", "get"}
AZ_READ = {"list", "show"}
READ_PREFIXES = ("list-", "describe-", "show-", "get-")
MUTATING = {
    "create", "delete", "update", "set", "unset", "patch", "add", "remove", "start", "stop",
    "restart", "reset", "resize", "deploy", "ssh", "scp", "import", "export", "run", "execute",
    "submit", "cancel", "enable", "disable", "attach", "detach", "move", "copy", "cp", "mv",
    "rm", "rsync", "sync", "apply", "login", "logout", "revoke", "activate", "purge",
    "rollback", "promote", "suspend", "resume", "connect", "upload", "download", "tail",
    "invoke", "call", "send", "write", "put", "publish", "init", "install", "uninstall",
    "upgrade", "scale", "restore", "snapshot", "failover", "reboot", "redeploy", "sign",
    "encrypt", "decrypt", "approve", "reject", "wait", "get-credentials", "access",
}  # fmt: skip
MUTATING_PREFIXES = (
    "add-", "remove-", "set-", "create-", "delete-", "update-", "enable-", "disable-",
    "start-", "stop-", "reset-", "put-", "attach-", "detach-",
)  # fmt: skip
SECRET_WORDS = ("secret-value", "password", "access-token", "identity-token",
                "authorization-token", "session-token", "federation-token", "credentials",
                "get-token", "auth-token", "connection-string", "publishing-profile",
                "list-keys", "decrypt", "assume-role", "access-details")  # fmt: skip


def check_args(cli: str, args: object) -> list[str]:
    if not isinstance(args, list) or not 1 <= len(args) <= MAX_ARGS:
        raise skillkit.Refused(f"'args' must be a list of 1 to {MAX_ARGS} strings")
    for arg in args:
        if not isinstance(arg, str) or len(arg) > MAX_ARG:
            raise skillkit.Refused(f"every arg must be a string of at most {MAX_ARG} characters")
        if any(c in arg for c in "\0\n\r"):
            raise skillkit.Refused("args may not contain NUL or line breaks")
        flag = arg.split("=", 1)[0]
        if flag in FORBIDDEN_FLAGS[cli]:
            raise skillkit.Refused(f"{cli} option {flag!r} is not allowed (cloud-cli sets output)")
        low = arg.lower()
        if cli == "aws" and low.startswith(("file://", "fileb://", "http://", "https://")):
            raise skillkit.Refused(
                f"{arg[:60]!r}: aws would load that file or URL; pass values inline"
            )
        if cli == "az" and arg.startswith("@"):
            raise skillkit.Refused(f"{arg[:60]!r}: az would read that file; pass values inline")
        if cli == "gcloud" and low.startswith("--flags-file"):
            raise skillkit.Refused("gcloud --flags-file is not allowed")
    return list(args)


def command_path(cli: str, args: list[str]) -> list[str]:
    """The leading words (groups and verb) before the first option or odd value."""
    path: list[str] = []
    for arg in args:
        if not WORD.fullmatch(arg):
            break
        path.append(arg)
    if not path:
        raise skillkit.Refused(
            f"{cli} args must start with the command (e.g. {example(cli)}); "
            f"{args[0][:60]!r} is not a command word"
        )
    return path


def example(cli: str) -> str:
    return {
        "aws": '["ec2", "describe-instances"]',
        "gcloud": '["compute", "instances", "list"]',
        "az": '["vm", "list"]',
    }[cli]


def is_mutating(word: str) -> bool:
    return word in MUTATING or word.startswith(MUTATING_PREFIXES)


def reveals_secrets(cli: str, path: list[str], args: list[str]) -> bool:
    words = path if cli != "aws" else path[:2]
    if any(w in SECRET_WORDS or any(s in w for s in SECRET_WORDS) for w in words):
        return True
    if "--with-decryption" in args:
        return True
    if cli == "aws" and path[0] in AWS_SECRET_SERVICES:
        return True
    if cli == "az" and "keys" in words:
        return True
    verb = words[-1]
    return any(w in ("secret", "secrets") for w in words) and verb not in ("list", "describe")


def is_read(cli: str, path: list[str]) -> bool:
    if cli == "aws":
        if len(path) < 2:
            return False
        service, op = path[0], path[1]
        if op in AWS_NOT_READ:
            return False
        if op == "ls":
            return service == "s3"
        return op in AWS_READ or op.startswith(AWS_READ_PREFIXES)
    if any(is_mutating(w) for w in path):
        return False
    verbs = GCLOUD_READ if cli == "gcloud" else AZ_READ
    # The verb is the last word, or the one before a single resource name (gcloud).
    candidates = path[-1:] if cli == "az" else path[-2:]
    return any(w in verbs or w.startswith(READ_PREFIXES) for w in candidates)


def run(args: dict[str, Any]) -> Any:
    cli = prockit.choice(args, "cli", CLIS)
    argv = check_args(cli, args.get("args"))
    path = command_path(cli, argv)
    label = " ".join([cli, *(path[:2] if cli == "aws" else path)])
    if reveals_secrets(cli, path, argv):
        raise skillkit.Refused(
            f"'{label}' can print credentials or secret values; cloud-cli never runs it"
        )
    wants_write = args.get("write") is True
    if not is_read(cli, path):
        if os.environ.get("CLOUD_CLI_ALLOW_WRITE", "").strip() != "1":
            raise skillkit.Refused(
                f"'{label}' is not a read-only command; cloud-cli only reads unless the "
                "admin sets CLOUD_CLI_ALLOW_WRITE=1"
            )
        if not wants_write:
            raise skillkit.Refused(
                f"'{label}' changes things: call again with \"write\": true so the user "
                "is asked to confirm it"
            )
    timeout = prockit.int_in(args, "timeout_sec", TIMEOUT_DEFAULT, 1, TIMEOUT_LIMIT)
    binary = shutil.which(cli)
    if binary is None:
        raise skillkit.Failed(f"{cli} is not installed on this host ({INSTALL[cli]} is missing)")
    env = {**os.environ, "AWS_PAGER": "", "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    done = prockit.run(
        [binary, *argv, *OUTPUT_FLAGS[cli]], timeout=timeout, max_bytes=MAX_OUTPUT, env=env
    )
    if done.truncated:
        raise skillkit.Failed(
            f"the output of '{label}' is over {MAX_OUTPUT // 1024} KB; narrow it "
            "(a filter, a query, fewer items)"
        )
    if done.code != 0:
        raise skillkit.Failed(f"{cli} exited with status {done.code}: {done.stderr_line()}")
    text = done.stdout.decode(errors="replace")
    result: dict[str, Any] = {"cli": cli, "command": [cli, *argv], "write": not is_read(cli, path)}
    try:
        result["data"] = json.loads(text) if text.strip() else None
    except ValueError:
        result["text"] = prockit.clip(text, 64 * 1024)
    return result


if __name__ == "__main__":
    skillkit.main("cloud-cli", run)
