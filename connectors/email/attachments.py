"""Files in and out of a mail, within :class:`~connectors.email.config.AttachmentLimits`.

In: each attached file is saved under the thread's folder as ``<uid>-<name>`` (the name
made safe; a mail can never write outside the folder) and becomes an
:class:`~nexflow.bus.events.Attachment`; the model is told of each one in the message
text (name, type, size, path relative to the workspace), and of each one left out and
why. Out: a file a reply carries is read from inside the workspace only and attached to
the mail; one over the limits is left out with a note in the mail's text.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import structlog

from connectors.email.config import AttachmentLimits
from connectors.email.mail import MailFile
from nexflow.bus.events import Attachment

log = structlog.get_logger("nexflow.email")

_UNSAFE = re.compile(r"[^\w.+-]+")


class FileRefused(Exception):
    """An outbound file that can never be sent: outside the workspace, or unreadable."""


@dataclass(frozen=True, slots=True)
class Inbound:
    saved: tuple[Attachment, ...]
    notes: tuple[str, ...]  # one line per file left out


def human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip("._")[:120] or "file"


def _over(files_so_far: int, total: int, size: int, limits: AttachmentLimits) -> str | None:
    if files_so_far >= limits.max_count:
        return f"more than {limits.max_count} attachments"
    if size > limits.max_file_bytes:
        return f"larger than the {human(limits.max_file_bytes)} limit per file"
    if total + size > limits.max_total_bytes:
        return f"over the {human(limits.max_total_bytes)} limit for all files of a mail"
    return None


def save_inbound(
    files: tuple[MailFile, ...], folder: Path, prefix: str, limits: AttachmentLimits
) -> Inbound:
    """Save what fits; runs in a worker thread (it writes files)."""
    saved: list[Attachment] = []
    notes: list[str] = []
    used: set[str] = set()
    total = 0
    for item in files:
        size = len(item.data)
        why = _over(len(saved), total, size, limits)
        if why is None:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{prefix}-{safe_name(item.name)}"
            if str(path) in used:  # two files of one mail with the same name
                path = folder / f"{prefix}-{len(used) + 1}-{safe_name(item.name)}"
            used.add(str(path))
            try:
                path.write_bytes(item.data)
            except OSError as exc:
                log.warning("email_attachment_not_saved", file=item.name, error=str(exc))
                why = "it could not be saved"
            else:
                total += size
                saved.append(Attachment(item.name, str(path), item.mime_type, size))
                continue
        log.info("email_attachment_skipped", file=item.name, size=size, reason=why)
        notes.append(f"{item.name} ({item.mime_type}, {human(size)}): not saved, {why}")
    return Inbound(tuple(saved), tuple(notes))


def describe(found: Inbound, workspace: Path) -> str:
    """The lines the model reads after the mail's text."""
    if not found.saved and not found.notes:
        return ""
    lines = ["Attachments:"]
    for item in found.saved:
        path = Path(item.path)
        shown = path.relative_to(workspace) if path.is_relative_to(workspace) else path
        lines.append(f"- {item.name} ({item.mime_type}, {human(item.size)}): saved at {shown}")
    lines += [f"- {note}" for note in found.notes]
    return "\n".join(lines)


def outbound_file(path: str, workspace: Path, limits: AttachmentLimits) -> MailFile | str:
    """The file at ``path`` (relative to the workspace, or absolute inside it), or a note
    for the mail's text when it is over the limits. Raises :class:`FileRefused` for a
    file outside the workspace or one that cannot be read. Runs in a worker thread."""
    root = workspace.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise FileRefused(f"{path} is outside the workspace")
    try:
        size = target.stat().st_size
        why = _over(0, 0, size, limits)
        if why is not None:
            log.info("email_attachment_skipped", file=str(target), size=size, reason=why)
            return f"(the file {target.name}, {human(size)}, is not attached: {why})"
        data = target.read_bytes()
    except OSError as exc:
        raise FileRefused(f"{path} cannot be read: {exc.strerror or type(exc).__name__}") from exc
    mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return MailFile(target.name, mime, data)


def attach(msg: EmailMessage, file: MailFile) -> None:
    maintype, _, subtype = file.mime_type.partition("/")
    msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.name)
