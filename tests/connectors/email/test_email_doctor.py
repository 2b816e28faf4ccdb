"""``nexflow doctor`` connects to the mailbox: an IMAP login and select against the fake
server, an SMTP EHLO and login against aiosmtpd; bad credentials, a closed port, a TLS
mismatch and a missing folder are each named, and no secret is printed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from email_helpers import Login, section, smtp_sink

from nexflow.config import load_config
from nexflow.doctor import Check
from nexflow.doctor_channels import channels
from nexflow.testing.fake_imap import FakeImap
from nexflow.testing.harness import free_port

SMTP_LOGIN = Login("bot@example.com", "smtp-secret")


async def doctor(tmp_path: Path, email: dict[str, Any]) -> tuple[Check, Check, Check]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"connectors": {"email": email}}))
    config = load_config(path, {"NEXFLOW_HOME": str(tmp_path / "home")})
    # the doctor blocks; the fake IMAP server lives on this loop
    (_, configured, imap, smtp) = await asyncio.to_thread(channels, config)
    assert configured.ok
    return configured, imap, smtp


def with_smtp_login(email: dict[str, Any], password: str) -> dict[str, Any]:
    email["smtp"] |= {"username": "bot@example.com", "password": password}
    return email


async def test_doctor_logs_in_to_both_servers(tmp_path: Path) -> None:
    with smtp_sink(SMTP_LOGIN) as (collected, port):
        async with FakeImap() as fake:
            fake.append(b"From: a@x\r\nSubject: s\r\n\r\nhi\r\n")
            email = with_smtp_login(section(fake, port), "smtp-secret")
            _, imap, smtp = await doctor(tmp_path, email)
    assert imap.ok and smtp.ok, (imap.render(), smtp.render())
    assert imap.detail == "logged in as bot@example.com; INBOX: 1 messages; IDLE"
    assert smtp.detail == "EHLO, logged in as bot@example.com"
    assert fake.logins == 1 and collected.mails == []


async def test_doctor_names_bad_credentials_without_the_secret(tmp_path: Path) -> None:
    with smtp_sink(SMTP_LOGIN) as (_, port):
        async with FakeImap(password="right") as fake:
            email = with_smtp_login(section(fake, port), "wrong-smtp-pass")
            email["imap"]["password"] = "wrong-imap-pass"
            _, imap, smtp = await doctor(tmp_path, email)
    for check in (imap, smtp):
        assert not check.ok and check.detail.startswith("bad credentials"), check.render()
        assert "password" in check.fix
        assert "wrong-imap-pass" not in check.render() and "wrong-smtp-pass" not in check.render()


async def test_doctor_names_a_closed_port_a_tls_mismatch_and_a_missing_folder(
    tmp_path: Path,
) -> None:
    closed = free_port()
    async with FakeImap() as fake:
        email = section(fake, closed)
        email["imap"]["port"] = free_port()
        _, imap, smtp = await doctor(tmp_path, email)
        assert not imap.ok and "unreachable" in imap.detail and "refused" in imap.detail
        assert not smtp.ok and smtp.detail == (
            f"unreachable: nothing listens at 127.0.0.1:{closed} (connection refused)"
        )

        with smtp_sink() as (_, port):
            tls = section(fake, port)
            tls["imap"]["ssl"] = True  # the fake speaks plain IMAP
            tls["smtp"]["ssl"] = True
            _, imap, smtp = await doctor(tmp_path, tls)
            assert not imap.ok and imap.detail.startswith("TLS error"), imap.render()
            assert not smtp.ok and smtp.detail.startswith("TLS error"), smtp.render()
            assert "ssl" in imap.fix

            folder = section(fake, port)
            folder["imap"]["mailbox"] = "Archive"
            _, imap, smtp = await doctor(tmp_path, folder)
            assert not imap.ok and "cannot open the mailbox 'Archive'" in imap.detail
            assert smtp.ok and smtp.detail == "EHLO"
