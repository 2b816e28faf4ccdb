"""send-email through the real SkillRunner and the gateway, against aiosmtpd on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_loopback import Cert, make_cert
from fakes_tools import MailSink

from nexflow.skills.isolation import IsolationLevel

FROM = "Nexflow Bot <bot@example.org>"


@pytest.fixture
def cert(workspace: Path) -> Cert:
    # In the workspace: the only part of /tmp a sandboxed skill can see.
    return make_cert(workspace / ".tls")


@pytest.fixture
def plain() -> Iterator[MailSink]:
    sink = MailSink(refuse={"ghost@example.com": "no such user"}).start()
    yield sink
    sink.stop()


@pytest.fixture
def secure(cert: Cert) -> Iterator[MailSink]:
    sink = MailSink(mode="starttls", cert=cert, users={"bot": "s3cret"}).start()
    yield sink
    sink.stop()


def plain_env(sink: MailSink, **extra: str) -> dict[str, str]:
    return {"SMTP_HOST": f"127.0.0.1:{sink.port}", "SMTP_FROM": FROM, "SMTP_TLS": "none", **extra}


MAIL = {
    "to": ["Ada Lovelace <ada@example.com>", "grace@example.com"],
    "cc": ["boss@example.com"],
    "subject": "Minutes of Tuesday — résumé",
    "body": "Hi all,\n\nthe minutes are attached in spirit.\n",
}


async def test_starttls_login_and_headers(
    workspace: Path, secure: MailSink, cert: Cert, level: IsolationLevel
) -> None:
    env = {
        "SMTP_HOST": "localhost",
        "SMTP_PORT": str(secure.port),
        "SMTP_FROM": FROM,
        "SMTP_USER": "bot",
        "SMTP_PASSWORD": "s3cret",
        "SMTP_CA_FILE": str(cert.pem),
    }  # SMTP_TLS unset: STARTTLS is the default
    r = await run_skill("send-email", MAIL, workspace, secrets=env, level=level)
    assert r.ok, r.stderr_tail
    assert r.data["to"] == ["ada@example.com", "grace@example.com", "boss@example.com"]
    assert r.data["refused"] == {}
    [got] = secure.received
    assert got.login == "bot" and got.mail_from == "bot@example.org"
    assert sorted(got.rcpt_tos) == ["ada@example.com", "boss@example.com", "grace@example.com"]
    msg = got.message
    assert msg["From"] == "Nexflow Bot <bot@example.org>"
    assert msg["To"] == "Ada Lovelace <ada@example.com>, grace@example.com"
    assert msg["Cc"] == "boss@example.com"
    assert "=?utf-8?" in str(msg["Subject"])  # encoded on the wire: it is not ASCII
    assert str(make_header(decode_header(msg["Subject"]))) == MAIL["subject"]
    assert msg["Message-ID"] == r.data["message_id"] and msg["Date"]
    assert "Bcc" not in msg and msg.get_content_type() == "text/plain"
    assert msg.get_payload(decode=True).decode().replace("\r\n", "\n") == MAIL["body"]


async def test_implicit_tls(workspace: Path, cert: Cert) -> None:
    sink = MailSink(mode="tls", cert=cert).start()
    try:
        env = {
            "SMTP_HOST": f"localhost:{sink.port}",
            "SMTP_FROM": FROM,
            "SMTP_TLS": "tls",
            "SMTP_CA_FILE": str(cert.pem),
        }
        r = await run_skill(
            "send-email",
            {"to": "ada@example.com", "subject": "s", "body": "b"},
            workspace,
            secrets=env,
        )
        assert r.ok, r.stderr_tail
        assert [m.rcpt_tos for m in sink.received] == [["ada@example.com"]]
    finally:
        sink.stop()


async def test_certificate_is_verified(workspace: Path, secure: MailSink) -> None:
    env = {"SMTP_HOST": f"localhost:{secure.port}", "SMTP_FROM": FROM}
    r = await run_skill(
        "send-email", {"to": "a@example.com", "subject": "s", "body": "b"}, workspace, secrets=env
    )
    assert "send-email: failed: TLS with localhost" in failure(r)
    assert "CERTIFICATE_VERIFY_FAILED" in r.stderr_tail
    assert secure.received == []


async def test_wrong_password(workspace: Path, secure: MailSink, cert: Cert) -> None:
    env = {
        "SMTP_HOST": f"localhost:{secure.port}",
        "SMTP_FROM": FROM,
        "SMTP_USER": "bot",
        "SMTP_PASSWORD": "wrong",
        "SMTP_CA_FILE": str(cert.pem),
    }
    r = await run_skill(
        "send-email", {"to": "a@example.com", "subject": "s", "body": "b"}, workspace, secrets=env
    )
    assert "refused the login: 535" in failure(r)
    assert secure.received == []


async def test_starttls_required_by_default(workspace: Path, plain: MailSink) -> None:
    env = {"SMTP_HOST": f"127.0.0.1:{plain.port}", "SMTP_FROM": FROM}
    r = await run_skill(
        "send-email", {"to": "a@example.com", "subject": "s", "body": "b"}, workspace, secrets=env
    )
    assert "does not offer STARTTLS" in failure(r)
    assert plain.received == []


async def test_refused_recipients_are_reported(workspace: Path, plain: MailSink) -> None:
    mail = {"to": ["ada@example.com", "ghost@example.com"], "subject": "s", "body": "b"}
    r = await run_skill("send-email", mail, workspace, secrets=plain_env(plain))
    assert r.ok and r.data["to"] == ["ada@example.com"]
    assert r.data["refused"] == {"ghost@example.com": "550 no such user"}
    alone = {**mail, "to": "ghost@example.com"}
    r = await run_skill("send-email", alone, workspace, secrets=plain_env(plain))
    assert "refused every recipient: ghost@example.com" in failure(r)
    assert len(plain.received) == 1


async def test_allowed_recipients(workspace: Path, plain: MailSink) -> None:
    env = plain_env(plain, SMTP_ALLOWED_RECIPIENTS="*@example.com, boss@corp.example")
    ok = {"to": "Boss <BOSS@corp.example>", "cc": ["x@example.com"], "subject": "s", "body": "b"}
    r = await run_skill("send-email", ok, workspace, secrets=env)
    assert r.ok, r.stderr_tail
    bad = {**ok, "cc": ["x@example.com.evil.net"]}
    r = await run_skill("send-email", bad, workspace, secrets=env)
    assert r.exit_code == 2
    assert "recipient 'x@example.com.evil.net' is not allowed" in r.stderr_tail
    assert len(plain.received) == 1


async def test_no_clear_text_password_off_loopback(workspace: Path) -> None:
    env = {
        "SMTP_HOST": "mail.example.com",
        "SMTP_FROM": FROM,
        "SMTP_TLS": "none",
        "SMTP_USER": "u",
        "SMTP_PASSWORD": "p",
    }
    r = await run_skill(
        "send-email", {"to": "a@example.com", "subject": "s", "body": "b"}, workspace, secrets=env
    )
    assert "in clear text" in refusal(r)


@pytest.mark.parametrize(
    ("mail", "why"),
    [
        ({"subject": "Hi\r\nBcc: victim@example.net"}, "'subject' contains a line break"),
        ({"subject": "Hi\nX-Evil: 1"}, "'subject' contains a line break"),
        ({"to": "a@example.com\r\nBcc: v@example.net"}, "'to' address contains a line break"),
        ({"to": "a@example.com, b@example.net"}, "is not one email address"),
        ({"cc": ["not-an-address"]}, "is not one email address"),
        ({"reply_to": "x@example.com\nBcc: y@example.com"}, "'reply_to' contains a line break"),
        ({"to": [f"u{i}@example.com" for i in range(11)]}, "at most 10 recipients"),
        ({"to": []}, "'to' must be an address or a list"),
        ({"subject": ""}, "'subject' must be 1 to 250 characters"),
        ({"body": "  "}, "'body' must be non-empty text"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_sent(
    workspace: Path, plain: MailSink, mail: dict[str, object], why: str
) -> None:
    payload = {"to": "a@example.com", "subject": "s", "body": "b", **mail}
    r = await run_skill("send-email", payload, workspace, secrets=plain_env(plain))
    assert "send-email: refused: " in refusal(r)
    assert why in r.stderr_tail, r.stderr_tail
    assert plain.received == []


async def test_unreachable_server(workspace: Path) -> None:
    env = {"SMTP_HOST": "127.0.0.1:1", "SMTP_FROM": FROM, "SMTP_TLS": "none"}
    r = await run_skill(
        "send-email", {"to": "a@example.com", "subject": "s", "body": "b"}, workspace, secrets=env
    )
    assert "cannot send through 127.0.0.1:1" in failure(r)


@pytest.mark.parametrize("approve", [True, False])
async def test_through_the_gateway_after_confirmation(
    home: Path, plain: MailSink, approve: bool
) -> None:
    mail = {"to": "ada@example.com", "subject": "From the gateway", "body": "Hello Ada."}
    async with skill_gateway(home, {"send-email": plain_env(plain)}) as gw:
        _, tool_msg, card = await call_skill(gw, "send-email", mail, approve=approve)
    assert card is not None and "ada@example.com" in card["detail"]
    assert "From the gateway" in card["detail"]
    if approve:
        assert tool_json(tool_msg)["to"] == ["ada@example.com"]
        [got] = plain.received
        assert got.message["Subject"] == "From the gateway"
        assert got.message.get_payload(decode=True).decode().strip() == "Hello Ada."
    else:
        assert "declined" in tool_msg
        assert plain.received == []
