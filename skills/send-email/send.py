"""send-email: one plain-text mail over the admin's SMTP server.

Settings (granted to this skill): SMTP_HOST (``host`` or ``host:port``) and SMTP_FROM
are required; SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_TLS (``starttls``, the default,
``tls`` or ``none``), SMTP_CA_FILE and SMTP_ALLOWED_RECIPIENTS are optional. Header
injection is impossible by construction: addresses and the subject may not hold CR/LF
or other control characters, and the message is built with the ``email`` package.
"""

import fnmatch
import ipaddress
import os
import re
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import skillkit

MAX_RECIPIENTS = 10
MAX_SUBJECT = 250
MAX_BODY = 100_000
TIMEOUT = 20.0
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def clean(value, what):
    if not isinstance(value, str):
        raise skillkit.Refused(f"{what} must be a string")
    if CONTROL.search(value):
        raise skillkit.Refused(f"{what} contains a line break or control character")
    return value.strip()


def address(raw, what):
    """``(display name, addr)`` of one address; refused unless it is a plain mailbox."""
    text = clean(raw, what)
    if text.count("@") != 1 or len(getaddresses([text])) != 1:
        raise skillkit.Refused(f"{what} {text!r} is not one email address")
    name, addr = parseaddr(text)
    if not ADDRESS.match(addr or ""):
        raise skillkit.Refused(f"{what} {text!r} is not a valid email address")
    return name, addr


def recipients(args, field, required):
    value = args.get(field, [] if not required else None)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (required and not value):
        raise skillkit.Refused(f"'{field}' must be an address or a list of addresses")
    return [address(v, f"'{field}' address") for v in value]


def allowed(addr, patterns):
    low = addr.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)


def message_from(args):
    to = recipients(args, "to", True)
    cc = recipients(args, "cc", False)
    reply_to = address(args["reply_to"], "'reply_to'") if "reply_to" in args else None
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise skillkit.Refused(f"at most {MAX_RECIPIENTS} recipients per mail")
    subject = clean(args.get("subject"), "'subject'")
    if not subject or len(subject) > MAX_SUBJECT:
        raise skillkit.Refused(f"'subject' must be 1 to {MAX_SUBJECT} characters")
    body = args.get("body")
    if not isinstance(body, str) or not body.strip():
        raise skillkit.Refused("'body' must be non-empty text")
    if len(body) > MAX_BODY or "\0" in body:
        raise skillkit.Refused(f"'body' must be at most {MAX_BODY} characters, without NUL")
    patterns = [p for p in re.split(r"[\s,;]+", os.environ.get("SMTP_ALLOWED_RECIPIENTS", "")) if p]
    if patterns:
        for _, addr in to + cc:
            if not allowed(addr, patterns):
                raise skillkit.Refused(
                    f"recipient {addr!r} is not allowed (SMTP_ALLOWED_RECIPIENTS)"
                )
    sender = address(skillkit.env("SMTP_FROM"), "SMTP_FROM")
    msg = EmailMessage()
    msg["From"] = formataddr(sender)
    msg["To"] = ", ".join(formataddr(a) for a in to)
    if cc:
        msg["Cc"] = ", ".join(formataddr(a) for a in cc)
    if reply_to:
        msg["Reply-To"] = formataddr(reply_to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender[1].rsplit("@", 1)[1])
    msg["X-Mailer"] = "Nexflow send-email"
    msg.set_content(body.replace("\r\n", "\n"))
    return msg, sender[1], [a for _, a in to + cc]


def server():
    raw = skillkit.env("SMTP_HOST")
    if raw.startswith("["):  # [IPv6]:port
        host, _, rest = raw[1:].partition("]")
        port = rest.removeprefix(":")
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    else:
        host, port = raw, ""
    mode = os.environ.get("SMTP_TLS", "starttls").strip().lower() or "starttls"
    if mode not in DEFAULT_PORTS:
        raise skillkit.Refused(f"SMTP_TLS must be starttls, tls or none, not {mode!r}")
    port = os.environ.get("SMTP_PORT", "").strip() or port or str(DEFAULT_PORTS[mode])
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise skillkit.Refused(f"the SMTP port {port!r} is not a port number")
    if not host or CONTROL.search(host):
        raise skillkit.Refused("SMTP_HOST must be a host name or host:port")
    return host, int(port), mode


def loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def tls_context():
    ctx = ssl.create_default_context()
    ca = os.environ.get("SMTP_CA_FILE", "").strip()
    if ca:
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise skillkit.Failed(f"cannot load SMTP_CA_FILE {ca}: {e}") from None
    return ctx


def send(msg, sender, rcpts):
    host, port, mode = server()
    user = os.environ.get("SMTP_USER", "").strip()
    password = os.environ.get("SMTP_PASSWORD", "")
    if user and mode == "none" and not loopback(host):
        raise skillkit.Refused(
            "SMTP_USER is set but SMTP_TLS is none: the password would cross the network "
            "in clear text; use starttls or tls"
        )
    where = f"{host}:{port}"
    try:
        if mode == "tls":
            conn = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=tls_context())
        else:
            conn = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with conn:
            if mode == "starttls":
                conn.starttls(context=tls_context())
            if user:
                conn.login(user, password)
            refused = conn.send_message(msg, from_addr=sender, to_addrs=rcpts)
    except smtplib.SMTPNotSupportedError:
        raise skillkit.Failed(f"{where} does not offer STARTTLS (set SMTP_TLS)") from None
    except smtplib.SMTPAuthenticationError as e:
        raise skillkit.Failed(f"{where} refused the login: {e.smtp_code} {reason(e)}") from None
    except smtplib.SMTPRecipientsRefused as e:
        bad = ", ".join(f"{a} ({c} {reason_text(m)})" for a, (c, m) in e.recipients.items())
        raise skillkit.Failed(f"{where} refused every recipient: {bad}") from None
    except smtplib.SMTPResponseException as e:
        raise skillkit.Failed(f"{where} answered {e.smtp_code} {reason(e)}") from None
    except ssl.SSLError as e:
        raise skillkit.Failed(f"TLS with {where} failed: {e.reason or e}") from None
    except TimeoutError:
        raise TimeoutError(f"{where} did not answer within {TIMEOUT:g} s") from None
    except (smtplib.SMTPException, OSError) as e:
        raise skillkit.Failed(f"cannot send through {where}: {e}") from None
    return {a: f"{c} {reason_text(m)}" for a, (c, m) in refused.items()}


def reason(e):
    return reason_text(e.smtp_error)


def reason_text(raw):
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:300]


def run(args):
    msg, sender, rcpts = message_from(args)
    refused = send(msg, sender, rcpts)
    return {
        "sent": True,
        "message_id": msg["Message-ID"],
        "from": sender,
        "to": [r for r in rcpts if r not in refused],
        "refused": refused,
        "subject": msg["Subject"],
    }


if __name__ == "__main__":
    skillkit.main("send-email", run)
