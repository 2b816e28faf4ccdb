"""The import report as a plain-text table: item, source, destination, status, reason."""

from __future__ import annotations

from collections import Counter

from nexflow.importers.model import Report

_HEADERS = ("ITEM", "SOURCE", "DESTINATION", "STATUS", "REASON")
_MAX = (34, 40, 48, 12)  # widths of the first four columns; the reason is not cut


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render(report: Report) -> str:
    title = "Dry run" if report.dry_run else "Import"
    lines = [f"{title}: {report.tool} from {report.source}", ""]
    table = [
        (f"{r.kind} {r.item}", r.source, r.destination, r.status, r.reason) for r in report.rows
    ]
    if not table:
        lines.append("nothing found to import")
    else:
        widths = [
            min(_MAX[i], max(len(_HEADERS[i]), *(len(row[i]) for row in table))) for i in range(4)
        ]
        lines.append(_line(_HEADERS, widths))
        for row, source in zip(table, report.rows, strict=True):
            lines.append(_line(row, widths))
            lines.extend(f"    {detail}" for detail in source.details if detail)
    counts = Counter(r.status for r in report.rows)
    if counts:
        lines += ["", ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    head = "  ".join(_cut(c, w).ljust(w) for c, w in zip(cells[:4], widths, strict=True))
    return f"{head}  {cells[4]}".rstrip()
