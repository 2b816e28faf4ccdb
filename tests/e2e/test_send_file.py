"""send_file: a workspace file goes to the user's chat after the reply, exactly once."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.gateway.file_tools import SendFileTool
from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_llm import Reply
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness
from nexflow.tools.base import ToolContext, ToolError

OWNER = 4242
CONFIG = {
    "security": {"owner": {"telegram": [str(OWNER)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
}
CTX = ToolContext("u", "s", "telegram", "1")


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path, config=CONFIG) as running:
        yield running


async def test_the_file_arrives_after_the_reply(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    report = gw.home / "workspace" / "reports" / "uptime.csv"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("host,up\napi,yes\n")
    gw.llm.push(
        Reply(tool_calls=(("send_file", {"path": "reports/uptime.csv", "caption": "Uptime"}),)),
        Reply(text="Here is the report."),
    )
    fake.message(OWNER, "send me the uptime report")
    await fake.wait_for(lambda: any(s.document for s in fake.sent), within=15)
    texts = [s.text for s in fake.sent]
    assert texts[0] == "Here is the report."
    (doc,) = [s for s in fake.sent if s.document]
    assert doc.document == ("uptime.csv", b"host,up\napi,yes\n") and doc.text == "Uptime"
    assert fake.sent.index(doc) == 1 and doc.chat_id == OWNER


async def test_only_regular_files_inside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    (workspace / "sub" / "ok.txt").write_text("fine")
    (workspace / "big.bin").write_bytes(b"x" * 2048)
    (tmp_path / "secret.txt").write_text("no")
    (workspace / "link").symlink_to(tmp_path / "secret.txt")
    tool = SendFileTool(workspace, max_bytes=1024)
    result = await tool.run({"path": "sub/ok.txt", "caption": "c"}, CTX)
    (sent,) = result.files
    assert Path(sent.path) == (workspace / "sub" / "ok.txt").resolve() and sent.caption == "c"
    refusals = {
        "../secret.txt": "outside the workspace",
        "link": "outside the workspace",
        str(tmp_path / "secret.txt"): "outside the workspace",
        "sub": "no file",
        "missing.txt": "no file",
        "big.bin": "over the 1.0 KB",
        "": "must be a file",
    }
    for path, why in refusals.items():
        with pytest.raises(ToolError, match=why):
            await tool.run({"path": path}, CTX)
