"""Mail in and out, free of I/O: parse a fetched message (its text and its attached
files), reduce HTML to text, drop quoted lines, build a reply in the same thread."""

from __future__ import annotations

import email
import email.policy
import email.utils
import mimetypes
import re
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser

_WROTE = re.compile(r"^\s*On\b.*\bwrote:\s*$", re.I)
_IDS = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class MailFile:
    """An attached file as it came in the mail (decoded, not saved anywhere yet)."""

    name: str
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Parsed:
    sender: str  # lowercased address
    sender_header: str
    subject: str
    message_id: str
    references: tuple[str, ...]  # References (or In-Reply-To), oldest first
    thread: str  # the root Message-ID of the chain, or the mail's own
    text: str
    automatic: bool  # an auto-reply / bulk mail: never answered
    files: tuple[MailFile, ...] = ()


class _Text(HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "blockquote":
            self._quote += 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quote = max(0, self._quote - 1)
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._quote:  # a quoted reply is not the sender's text
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (
        re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(parser.parts).split("\n")
    )
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_quotes(text: str) -> str:
    """Drop quoted lines (``> …``) and the ``On … wrote:`` line that introduces them."""
    kept = [
        line
        for line in text.replace("\r\n", "\n").split("\n")
        if not line.lstrip().startswith(">") and not _WROTE.match(line)
    ]
    return "\n".join(kept).strip()


def _ids(value: str | None) -> list[str]:
    return _IDS.findall(str(value or ""))


def parse(raw: bytes, fallback_id: str) -> Parsed:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    sender_header = str(msg.get("From", ""))
    sender = email.utils.parseaddr(sender_header)[1].strip().lower()
    own = _ids(msg.get("Message-ID"))
    message_id = own[0] if own else fallback_id
    references = _ids(msg.get("References")) or _ids(msg.get("In-Reply-To"))
    reply_to = _ids(msg.get("In-Reply-To"))
    if reply_to and reply_to[0] not in references:
        references.append(reply_to[0])
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    return Parsed(
        sender=sender,
        sender_header=sender_header,
        subject=str(msg.get("Subject", "")).strip(),
        message_id=message_id,
        references=tuple(references),
        thread=references[0] if references else message_id,
        text=strip_quotes(body_text(msg)),
        automatic=auto not in ("", "no") or precedence in ("bulk", "junk", "list"),
        files=attached_files(msg),
    )


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if isinstance(part, EmailMessage):
        return str(part.get_content())
    part = msg.get_body(preferencelist=("html",))
    if isinstance(part, EmailMessage):
        return html_to_text(str(part.get_content()))
    return ""


def attached_files(msg: EmailMessage) -> tuple[MailFile, ...]:
    """Every leaf part that is not the body and is an attachment or carries a file name
    (an inline image without a name is decoration, not a file)."""
    body = msg.get_body(preferencelist=("plain", "html"))
    files: list[MailFile] = []
    for part in msg.walk():
        if part is body or part.is_multipart():
            continue
        name = part.get_filename()
        if part.get_content_disposition() != "attachment" and not name:
            continue
        mime = part.get_content_type()
        payload = part.get_payload(decode=True)
        if isinstance(part, EmailMessage) and mime == "message/rfc822":
            inner = part.get_payload(0)
            data = inner.as_bytes() if isinstance(inner, EmailMessage) else b""
        elif isinstance(payload, bytes):
            data = payload
        else:
            data = b""
        if not name:
            name = f"attachment-{len(files) + 1}{mimetypes.guess_extension(mime) or '.bin'}"
        files.append(MailFile(str(name), mime, data))
    return tuple(files)


def reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".rstrip()


def build_reply(
    *,
    sender: str,
    to: str,
    subject: str,
    in_reply_to: str,
    references: list[str],
    text: str,
    domain: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = reply_subject(subject)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-replied"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join([*references[-20:]])
    msg.set_content(text)
    return msg
