"""``nexflow doctor`` for the email channel: it logs in to the mailbox and opens the
configured folder, and greets the SMTP server (EHLO, STARTTLS and login when
configured), each within ``timeout_s`` (at most :data:`DOCTOR_TIMEOUT_S`). A failure
names what went wrong (bad credentials, unreachable, a TLS error) and never a secret.
Blocking: the doctor is a command, not the gateway's loop."""

from __future__ import annotations

import contextlib

from connectors.email import imap, smtp
from connectors.email.config import EmailConfig, ImapConfig, SmtpConfig
from nexflow.doctor import Check

DOCTOR_TIMEOUT_S = 10.0


def checks(config: EmailConfig) -> list[Check]:
    return [check_imap(config.imap), check_smtp(config.smtp)]


def check_imap(config: ImapConfig) -> Check:
    config = config.model_copy(update={"timeout_s": min(config.timeout_s, DOCTOR_TIMEOUT_S)})
    title = f"email imap {config.host}:{config.effective_port}"
    try:
        client = imap.connect(config)
        try:
            count = imap.login_and_select(client, config)
            idle = "IDLE" in client.capabilities
        finally:
            with contextlib.suppress(*imap.MAILBOX_ERRORS):
                client.logout()
    except imap.MAILBOX_ERRORS as exc:
        reason = imap.failure(exc, config.host, config.effective_port)
        return Check(False, title, reason, _fix(reason, "connectors.email.imap"))
    watch = "IDLE" if idle else "no IDLE: polled every poll_s"
    detail = f"logged in as {config.username}; {config.mailbox}: {count} messages; {watch}"
    return Check(True, title, detail)


def check_smtp(config: SmtpConfig) -> Check:
    config = config.model_copy(update={"timeout_s": min(config.timeout_s, DOCTOR_TIMEOUT_S)})
    title = f"email smtp {config.host}:{config.effective_port}"
    try:
        client = smtp.connect(config)
        with contextlib.suppress(*imap.MAILBOX_ERRORS):
            client.quit()
    except imap.MAILBOX_ERRORS as exc:
        reason = imap.failure(exc, config.host, config.effective_port)
        return Check(False, title, reason, _fix(reason, "connectors.email.smtp"))
    steps = ["EHLO"]
    if config.ssl is True:
        steps.insert(0, "TLS")
    elif config.ssl == "starttls":
        steps.append("STARTTLS")
    if config.username and config.password is not None:
        steps.append(f"logged in as {config.username}")
    return Check(True, title, ", ".join(steps))


def _fix(reason: str, key: str) -> str:
    if reason.startswith("bad credentials"):
        return (
            f"check {key}.username and {key}.password (an app password, if the provider wants one)"
        )
    if reason.startswith("TLS error"):
        return f"check {key}.ssl (true: implicit TLS, starttls, false) and {key}.port"
    if reason.startswith("unreachable"):
        return f"check {key}.host and {key}.port, and that this machine may reach them"
    return f"check {key}"
