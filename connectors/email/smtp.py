"""Sending over SMTP with the standard library's ``smtplib``, in a worker thread:
implicit TLS, STARTTLS or plain, a login when a username is set. Answers are sorted
for the outbox: 4xx and connection errors are retryable, 5xx final
(:class:`~nexflow.gateway.connector.DeliveryError`)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from connectors.email.config import SmtpConfig
from nexflow.gateway.connector import DeliveryError


def connect(config: SmtpConfig) -> smtplib.SMTP:
    """Connected, greeted (EHLO), on TLS when configured and logged in when configured."""
    port = config.effective_port
    client: smtplib.SMTP
    if config.ssl is True:
        client = smtplib.SMTP_SSL(
            config.host, port, timeout=config.timeout_s, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(config.host, port, timeout=config.timeout_s)
    try:
        client.ehlo()
        if config.ssl == "starttls":
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if config.username and config.password is not None:
            client.login(config.username, config.password.get_secret_value())
    except BaseException:
        client.close()
        raise
    return client


def send(config: SmtpConfig, msg: EmailMessage) -> None:
    try:
        with connect(config) as client:
            client.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"recipient refused: {exc.recipients}", retryable=all(400 <= c < 500 for c in codes)
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retryable=exc.smtp_code < 500
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}") from exc
