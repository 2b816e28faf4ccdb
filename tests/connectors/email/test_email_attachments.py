"""Files in and out of a mail, as real MIME through the fake IMAP server and aiosmtpd:
saved within the limits and listed for the model; oversize ones left out with a note;
a reply's file attached, from inside the workspace only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from email_helpers import BOT, Collect, mail, raw, running, section

from connectors.email.config import EmailConfig
from connectors.email.connector import EmailConnector
from nexflow.bus.events import FileOut, TextOut
from nexflow.gateway.connector import DeliveryError
from nexflow.testing.fake_imap import FakeImap
from nexflow.testing.waiting import wait_until

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8  # 2 KB of binary
LIMITS = {"max_file_bytes": 4096, "max_total_bytes": 5000, "max_count": 3}


def content(path: str) -> bytes:
    return Path(path).read_bytes()


def connector_for(imap: FakeImap, port: int, tmp_path: Path, **extra: object) -> EmailConnector:
    config = EmailConfig.from_section(section(imap, port, poll_s=60, attachments=LIMITS, **extra))
    workspace = tmp_path / "workspace"
    return EmailConnector(
        config, tmp_path / "email", files_dir=workspace / "inbox" / "email", workspace=workspace
    )


async def test_inbound_files_are_saved_within_limits_and_listed(
    tmp_path: Path, smtp: tuple[Collect, int]
) -> None:
    msg = mail("alice@example.com", "the numbers", "See attached.", "<a1@x>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="../../etc/data.csv")
    msg.add_attachment(b"x" * 5000, maintype="application", subtype="zip", filename="big.zip")
    msg.add_attachment(b"y" * 3000, maintype="image", subtype="png", filename="third.png")
    msg.add_attachment(b"z" * 10, maintype="image", subtype="png", filename="fourth.png")
    async with FakeImap(username=BOT) as imap:
        imap.append(msg.as_bytes())
        connector = connector_for(imap, smtp[1], tmp_path)
        async with running(connector) as received:
            event = await asyncio.wait_for(received.get(), 10)
    folder = tmp_path / "workspace" / "inbox" / "email" / "a1@x"
    by_name = {a.name: a for a in event.attachments}
    assert sorted(by_name) == ["../../etc/data.csv", "fourth.png", "report.pdf"]
    pdf = by_name["report.pdf"]
    assert (pdf.mime_type, pdf.size) == ("application/pdf", len(PDF))
    assert Path(pdf.path) == folder / "1-report.pdf"
    assert content(pdf.path) == PDF
    csv = by_name["../../etc/data.csv"].path
    assert (
        Path(csv).parent == folder and content(csv) == b"a,b\r\n1,2\r\n"
    )  # as sent; never outside
    text = event.message
    assert text.startswith("See attached.")
    assert "report.pdf (application/pdf, 2.0 KB): saved at inbox/email/a1@x/1-report.pdf" in text
    assert "big.zip (application/zip, 4.9 KB): not saved, larger than the 4.0 KB limit" in text
    assert "third.png (image/png, 2.9 KB): not saved, over the 4.9 KB limit for all" in text
    assert not (folder / "1-big.zip").exists() and not (folder / "1-third.png").exists()
    assert len(event.metadata["skipped_attachments"]) == 2


async def test_too_many_files_and_too_large_a_mail(
    tmp_path: Path, smtp: tuple[Collect, int]
) -> None:
    many = mail("alice@example.com", "lots", "", "<n1@x>")
    for i in range(4):
        many.add_attachment(
            b"%d" % i, maintype="application", subtype="octet-stream", filename=f"f{i}.bin"
        )
    huge = mail("alice@example.com", "huge", "too big to read", "<h1@x>")
    huge.add_attachment(b"h" * 30_000, maintype="application", subtype="zip", filename="h.zip")
    async with FakeImap(username=BOT) as imap:
        imap.append(many.as_bytes())
        imap.append(huge.as_bytes())
        connector = connector_for(imap, smtp[1], tmp_path, max_mail_bytes=20_000)
        async with running(connector) as received:
            first = await asyncio.wait_for(received.get(), 10)
            second = await asyncio.wait_for(received.get(), 10)
    assert [a.name for a in first.attachments] == ["f0.bin", "f1.bin", "f2.bin"]
    assert first.message.startswith("lots")  # no text: the subject stands in
    assert "f3.bin (application/octet-stream, 1 B): not saved, more than 3 attachments" in (
        first.message
    )
    assert second.attachments == ()
    assert "only its subject was read" in second.message
    assert "too big to read" not in second.message


async def test_a_reply_carries_its_file_within_limits(
    tmp_path: Path, smtp: tuple[Collect, int]
) -> None:
    collected, port = smtp
    async with FakeImap(username=BOT) as imap:
        imap.append(raw("alice@example.com", "send it", "the chart please", "<o1@x>"))
        connector = connector_for(imap, port, tmp_path)
        workspace = tmp_path / "workspace"
        (workspace / "out").mkdir(parents=True)
        (workspace / "out" / "chart.png").write_bytes(PDF)
        (workspace / "out" / "huge.bin").write_bytes(b"h" * 5000)
        (tmp_path / "secret.txt").write_text("keys")
        async with running(connector) as received:
            event = await asyncio.wait_for(received.get(), 10)
            chat = event.chat_id
            await connector.send(
                FileOut(channel="email", chat_id=chat, path="out/chart.png", caption="Here.")
            )
            await wait_until(lambda: len(collected.mails) == 1)
            sent = collected.mails[0]
            assert sent["In-Reply-To"] == "<o1@x>" and sent["To"] == "alice@example.com"
            body = sent.get_body(preferencelist=("plain",))
            assert body is not None and body.get_content().strip() == "Here."
            (part,) = list(sent.iter_attachments())
            assert part.get_filename() == "chart.png"
            assert part.get_content_type() == "image/png"
            assert part.get_content() == PDF

            absolute = str(workspace / "out" / "huge.bin")
            await connector.send(
                FileOut(channel="email", chat_id=chat, path=absolute, caption="Big one.")
            )
            await wait_until(lambda: len(collected.mails) == 2)
            big = collected.mails[1]
            assert list(big.iter_attachments()) == []
            text = big.get_content()
            assert "Big one." in text
            assert "huge.bin, 4.9 KB, is not attached: larger than the 4.0 KB limit" in text

            for outside in ("../secret.txt", str(tmp_path / "secret.txt"), "out/missing.pdf"):
                with pytest.raises(DeliveryError) as refused:
                    await connector.send(FileOut(channel="email", chat_id=chat, path=outside))
                assert refused.value.retryable is False
            await connector.send(TextOut(channel="email", chat_id=chat, text="plain"))
            await wait_until(lambda: len(collected.mails) == 3)
            assert len(collected.mails) == 3  # the refused files sent nothing
            assert not collected.mails[2].is_multipart()
