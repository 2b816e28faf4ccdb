"""The bundled cloud-cli skill with fake aws/gcloud/az executables that record their argv.

PATH holds only the fakes' folder, so a real CLI on the test machine is never run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from bundled_support import (
    bundled,
    call_skill,
    check_folder,
    failure,
    load,
    make_runner,
    refusal,
    skill_gateway,
)
from fakes_ops_bin import FakeBin, fake_cloud_clis

from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult


@pytest.fixture
def fake(workspace: Path) -> FakeBin:
    return fake_cloud_clis(workspace / ".bin")


async def cloud(
    fake: FakeBin,
    ws: Path,
    payload: dict[str, Any],
    *,
    level: IsolationLevel = IsolationLevel.NONE,
    allow_write: bool = False,
) -> RunResult:
    skill = bundled("cloud-cli", path=fake.path_env())
    secrets = {}
    if allow_write:
        # Stands in for the admin granting the optional CLOUD_CLI_ALLOW_WRITE setting:
        # the runner passes only the variables a skill declares.
        skill = dataclasses.replace(skill, env_required=("CLOUD_CLI_ALLOW_WRITE",))
        secrets = {"CLOUD_CLI_ALLOW_WRITE": "1"}
    return await make_runner(level, fake.path_env()).run(
        skill, payload, workspace=ws, secrets=secrets
    )


async def test_aws_read(fake: FakeBin, workspace: Path, level: IsolationLevel) -> None:
    args = ["ec2", "describe-instances", "--region", "eu-west-1"]
    r = await cloud(fake, workspace, {"cli": "aws", "args": args}, level=level)
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data is not None
    assert r.data["data"]["Reservations"] == [{"InstanceId": "i-0abc123"}]
    assert r.data["command"] == ["aws", *args] and r.data["write"] is False
    argv = fake.calls()[-1]
    assert argv[0].endswith("/aws")
    assert argv[1:] == [*args, "--output", "json", "--no-cli-pager"]


@pytest.mark.parametrize(
    ("cli", "args", "added"),
    [
        (
            "gcloud",
            ["compute", "instances", "describe", "vm-1", "--zone", "z"],
            ["--format=json", "--quiet"],
        ),
        ("gcloud", ["config", "get-value", "project"], ["--format=json", "--quiet"]),
        ("gcloud", ["projects", "list"], ["--format=json", "--quiet"]),
        ("az", ["vm", "list", "-g", "rg1"], ["--output", "json", "--only-show-errors"]),
        (
            "az",
            ["vm", "get-instance-view", "-n", "vm1"],
            ["--output", "json", "--only-show-errors"],
        ),
        ("aws", ["s3", "ls", "s3://bucket/logs/"], ["--output", "json", "--no-cli-pager"]),
        ("aws", ["sts", "get-caller-identity"], ["--output", "json", "--no-cli-pager"]),
    ],
)
async def test_read_commands(
    fake: FakeBin, workspace: Path, cli: str, args: list[str], added: list[str]
) -> None:
    r = await cloud(fake, workspace, {"cli": cli, "args": args})
    assert r.ok, r.stderr_tail
    assert (
        r.data is not None
        and r.data["data"]["cli"] == cli
        and r.data["data"]["args"] == [*args, *added]
    )
    assert fake.calls()[-1][1:] == [*args, *added]


@pytest.mark.parametrize(
    ("cli", "args", "why"),
    [
        (
            "aws",
            ["ec2", "terminate-instances", "--instance-ids", "i-1"],
            "'aws ec2 terminate-instances' is not a read-only command",
        ),
        (
            "aws",
            ["s3api", "get-object", "--bucket", "b", "--key", "k", "out"],
            "is not a read-only",
        ),
        ("aws", ["s3", "rm", "s3://b/k"], "is not a read-only"),
        ("gcloud", ["compute", "instances", "delete", "list"], "is not a read-only"),
        ("gcloud", ["compute", "ssh", "describe"], "is not a read-only"),
        ("gcloud", ["container", "clusters", "resize", "prod"], "is not a read-only"),
        ("az", ["vm", "delete", "-n", "vm1"], "'az vm delete' is not a read-only"),
        ("az", ["vm", "list", "start"], "is not a read-only"),
        (
            "aws",
            ["secretsmanager", "get-secret-value", "--secret-id", "db"],
            "can print credentials or secret values",
        ),
        ("aws", ["ecr", "get-login-password"], "can print credentials"),
        (
            "aws",
            ["ssm", "get-parameter", "--name", "p", "--with-decryption"],
            "can print credentials",
        ),
        ("aws", ["configure", "get", "aws_secret_access_key"], "can print credentials"),
        ("aws", ["sts", "assume-role", "--role-arn", "x"], "can print credentials"),
        (
            "gcloud",
            ["secrets", "versions", "access", "latest", "--secret", "db"],
            "can print credentials",
        ),
        ("gcloud", ["auth", "print-access-token"], "can print credentials"),
        ("az", ["keyvault", "secret", "show", "--name", "db"], "can print credentials"),
        ("az", ["storage", "account", "keys", "list"], "can print credentials"),
        ("az", ["aks", "get-credentials", "-n", "prod"], "can print credentials"),
        (
            "aws",
            ["ec2", "describe-instances", "--output", "text"],
            "option '--output' is not allowed",
        ),
        ("gcloud", ["projects", "list", "--format=yaml"], "option '--format' is not allowed"),
        ("gcloud", ["projects", "list", "--log-http"], "option '--log-http' is not allowed"),
        ("az", ["vm", "list", "-o", "tsv"], "option '-o' is not allowed"),
        (
            "aws",
            ["ec2", "describe-instances", "--endpoint-url", "http://evil"],
            "option '--endpoint-url'",
        ),
        (
            "aws",
            ["ec2", "describe-instances", "--filters", "file:///etc/passwd"],
            "aws would load that file",
        ),
        ("az", ["vm", "list", "--query", "@/etc/shadow"], "az would read that file"),
        ("aws", ["--version"], "is not a command word"),
        ("gcloud", ["-h"], "is not a command word"),
        ("aws", ["ec2", "describe-instances\nrm"], "line breaks"),
        ("aws", [], "'args' must be a list of 1 to 64"),
    ],
)
async def test_refusals_never_run_the_cli(
    fake: FakeBin, workspace: Path, cli: str, args: list[str], why: str
) -> None:
    r = await cloud(fake, workspace, {"cli": cli, "args": args})
    assert why in refusal(r)
    assert fake.calls() == []


async def test_writes_need_the_admin_and_the_flag(fake: FakeBin, workspace: Path) -> None:
    args = ["ec2", "stop-instances", "--instance-ids", "i-0abc123"]
    r = await cloud(fake, workspace, {"cli": "aws", "args": args}, allow_write=True)
    assert 'call again with "write": true' in refusal(r)
    assert fake.calls() == []
    r = await cloud(fake, workspace, {"cli": "aws", "args": args, "write": True})
    assert "CLOUD_CLI_ALLOW_WRITE=1" in refusal(r)
    assert fake.calls() == []
    r = await cloud(fake, workspace, {"cli": "aws", "args": args, "write": True}, allow_write=True)
    assert r.ok and r.data is not None and r.data["write"] is True
    assert fake.calls()[-1][1:5] == args
    secret = ["secretsmanager", "get-secret-value", "--secret-id", "db"]
    r = await cloud(
        fake, workspace, {"cli": "aws", "args": secret, "write": True}, allow_write=True
    )
    assert "never runs it" in refusal(r)


async def test_cli_failures_are_clear(fake: FakeBin, workspace: Path) -> None:
    r = await cloud(fake, workspace, {"cli": "aws", "args": ["ec2", "describe-vpcs", "fail-me"]})
    said = failure(r)
    assert "aws exited with status 254: An error occurred (AccessDenied): not allowed" in said
    r = await cloud(
        fake, workspace, {"cli": "aws", "args": ["ec2", "describe-vpcs", "huge-output"]}
    )
    assert "is over 512 KB; narrow it" in failure(r)
    r = await cloud(fake, workspace, {"cli": "az", "args": ["account", "show", "-s", "not-json"]})
    assert r.ok and r.data is not None and r.data["text"] == "plain text answer\n"


def test_skill_folder(fake: FakeBin) -> None:
    skill = check_folder("cloud-cli", path=fake.path_env())
    assert skill.requirements.any_bins == ("aws", "gcloud", "az")
    effects = skill.declared_effects
    assert effects is not None
    write = effects.for_input({"cli": "aws", "args": [], "write": True})
    assert write.confirm and write.writes and write.egress
    read = effects.for_input({"cli": "aws", "args": []})
    assert not (read.confirm or read.writes) and read.untrusted_output


async def test_time_cap(fake: FakeBin, workspace: Path) -> None:
    started = time.monotonic()
    payload = {"cli": "gcloud", "args": ["projects", "list", "sleep-me"], "timeout_sec": 1}
    r = await cloud(fake, workspace, payload)
    assert not r.ok and r.exit_code == 1, r.stderr_tail
    assert "cloud-cli: timed out: " in r.stderr_tail and "within 1 s" in r.stderr_tail
    assert time.monotonic() - started < 10
    r = await cloud(fake, workspace, {**payload, "timeout_sec": 500})
    assert "between 1 and 55" in refusal(r)


async def test_any_of_the_clis_makes_it_available(workspace: Path) -> None:
    none = load("cloud-cli", path=str(workspace / "empty"))
    assert not none.available
    assert "needs one of these binaries on PATH: aws, gcloud, az" in (none.reason or "")
    only = fake_cloud_clis(workspace / "only-gcloud", ("gcloud",))
    assert load("cloud-cli", path=only.path_env()).available
    r = await cloud(only, workspace, {"cli": "aws", "args": ["ec2", "describe-instances"]})
    assert "aws is not installed on this host (the AWS CLI is missing)" in failure(r)
    r = await cloud(only, workspace, {"cli": "gcloud", "args": ["projects", "list"]})
    assert r.ok


# -- through the gateway ----------------------------------------------------------------


async def test_read_and_write_through_the_gateway(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_cloud_clis(home / "workspace" / ".bin")
    monkeypatch.setenv("PATH", fake.path_env())
    async with skill_gateway(home, {}) as gw:
        payload = {"cli": "aws", "args": ["ec2", "describe-instances"]}
        reply, tool, card = await call_skill(gw, "cloud-cli", payload)
        assert card is None and "i-0abc123" in tool and "i-0abc123" in reply["reply"]
        write = {
            "cli": "aws",
            "args": ["ec2", "stop-instances", "--instance-ids", "i-1"],
            "write": True,
        }
        _, declined, card = await call_skill(gw, "cloud-cli", write, approve=False)
        assert card is not None and "stop-instances" in card["detail"]
        assert "declined" in declined
        _, approved, card = await call_skill(gw, "cloud-cli", write, approve=True)
    # Confirmed, yet the admin has not allowed writes: the skill still refuses.
    assert "CLOUD_CLI_ALLOW_WRITE=1" in approved
    assert [argv[1:3] for argv in fake.calls()] == [["ec2", "describe-instances"]]
