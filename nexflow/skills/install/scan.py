"""The static scan of a quarantined item: a table of rules, each with an id, a severity
and a one-line message, applied with regexes (and the Python AST for ``.py`` files).

Findings carry ``file:line``. ``high`` and ``medium`` findings flag the item: it is not
installed without the user's explicit approval. The scan is a tripwire for the common
tricks, not a proof of safety; the sandbox and permissions still apply after install.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nexflow.skills.install.lock import iter_files
from nexflow.skills.install.model import SEVERITY_ORDER, Finding, Severity

MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 10 * 1024 * 1024
MAX_TEXT_SCAN_BYTES = 2 * 1024 * 1024

DOC_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst", ".nxml", ".html", ".htm"})
CODE_SUFFIXES = frozenset(
    {".py", ".sh", ".bash", ".zsh", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".ps1", ".php"}
)


@dataclass(frozen=True)
class Rule:
    """One scan rule. ``where``: the files it reads: ``text`` every text file, ``doc``
    Markdown, text and NXML, ``code`` scripts, ``program`` everything but docs."""

    id: str
    severity: Severity
    message: str
    pattern: re.Pattern[str] | None = None
    where: str = "text"


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_SHELLS = r"(?:sudo\s+)?(?:ba|z|k|da|fi)?sh|python[23]?|perl|ruby|node|iex|invoke-expression"

_CREDENTIAL_PATHS = (
    r"~/\.ssh/|\$HOME/\.ssh/|\.ssh/id_(?:rsa|ed25519|ecdsa|dsa)\b|authorized_keys"
    r"|\.aws/credentials|\.config/gcloud|\.azure/|\.kube/config|\.docker/config\.json"
    r"|\.git-credentials|\.netrc\b|\.npmrc\b|\.pypirc\b|\.gnupg/"
    r"|~/\.nexflow|\$NEXFLOW_HOME|[\"'/]\.nexflow(?:[\"'/]|$)|\bsecrets\.env\b|/etc/shadow"
    r"|login\.keychain|gnome-keyring|kwallet"
    r"|Login\s+Data\b|/Cookies\b|cookies\.sqlite|\.mozilla/firefox"
    r"|google-chrome/|Google/Chrome/|BraveSoftware/|Chromium/(?:Default|User)"
)
_CREDENTIAL_COMMANDS = r"security\s+find-(?:generic|internet)-password|\bsecret-tool\s+lookup"

RULES: tuple[Rule, ...] = (
    Rule(
        "pipe-to-shell",
        "high",
        "downloads a script and runs it unseen (pipe to a shell)",
        _re(
            rf"\b(?:curl|wget|iwr|irm|invoke-webrequest|fetch)\b[^\n|]*\|\s*(?:{_SHELLS})\b"
            r"|(?:ba|z)?sh\s+(?:-c\s+)?[\"']?(?:<\(|\$\()\s*(?:curl|wget)\b"
            r"|\bwget\b[^\n|]*-O\s*-\s*\|"
        ),
    ),
    Rule(
        "encoded-exec",
        "high",
        "decodes hidden content and runs it",
        _re(
            rf"base64\s+(?:-d|--decode|-D)\b[^\n]*\|\s*(?:{_SHELLS})\b"
            r"|\beval\s*\(\s*atob\s*\("
            r"|\b(?:exec|eval)\s*\(\s*(?:base64\.\w*decode|codecs\.decode|bytes\.fromhex"
            r"|zlib\.decompress|marshal\.loads|b64decode|Buffer\.from)"
            r"|\bexec\s*\(\s*__import__\s*\(\s*['\"](?:base64|zlib|codecs|marshal)"
        ),
    ),
    Rule(
        "encoded-blob",
        "medium",
        "contains a long encoded blob (base64 or hex) that cannot be reviewed",
        re.compile(
            r"(?<![A-Za-z0-9+/=_-])(?!data:)[A-Za-z0-9+/]{200,}={0,2}(?![A-Za-z0-9+/=])"
            r"|(?:\\x[0-9a-fA-F]{2}){40,}"
            r"|(?<![0-9a-fA-F])[0-9a-fA-F]{256,}(?![0-9a-fA-F])"
        ),
    ),
    Rule(
        "obfuscated-code",
        "high",
        "builds code at run time to hide what it does (eval/exec of built strings, "
        "chr-joins, __import__ tricks)",
        _re(
            r"\bchr\s*\(\s*\d+\s*\)\s*\+\s*chr\s*\("
            r"|['\"]\s*\.join\s*\(\s*(?:map\s*\(\s*chr|\[?\s*chr\s*\()"
            r"|String\.fromCharCode\s*\((?:\s*\d+\s*,){4,}"
            r"|\bnew\s+Function\s*\("
            r"|__import__\s*\(\s*['\"][^'\"]+['\"]\s*\)\s*\.\s*(?:system|popen|exec\w*|spawn\w*)"
            r"|getattr\s*\(\s*__builtins__"
            r"|\beval\s*\(\s*(?:\w+\s*\+|['\"][^'\"]*['\"]\s*\+)"
        ),
        where="code",
    ),
    Rule(
        "credential-read",
        "high",
        "reads credentials or the Nexflow home (keys, tokens, secrets, browser profiles)",
        _re(f"{_CREDENTIAL_PATHS}|{_CREDENTIAL_COMMANDS}|\\bkeychain\\b"),
        where="program",
    ),
    Rule(
        "credential-instructions",
        "high",
        "tells the model to read or send credentials or the Nexflow home",
        _re(
            r"\b(?:cat|read|open|less|more|head|tail|upload|send|post|copy|cp|scp|rsync|print"
            rf"|dump|include|attach|exfiltrate|contents?\s+of)\b[^\n]{{0,80}}(?:{_CREDENTIAL_PATHS})"
            rf"|{_CREDENTIAL_COMMANDS}"
        ),
        where="doc",
    ),
    Rule(
        "dotenv-read",
        "medium",
        "reads a .env file (often holds other programs' secrets)",
        re.compile(r"""(?:open|read|cat|source|load|Path)\b[^\n]{0,40}['"/~\s]\.env\b(?!\w)"""),
        where="code",
    ),
    Rule(
        "undeclared-network",
        "medium",
        "uses the network but does not declare the 'network' permission",
        re.compile(
            r"^\s*(?:import|from)\s+(?:urllib|requests|httpx|aiohttp|socket|http\.client"
            r"|urllib3|websocket|websockets|ftplib|smtplib|paramiko)\b"
            r"|\b(?:urlopen|requests\.(?:get|post|put|delete|request)|httpx\.\w+)\s*\("
            r"|\bfetch\s*\(\s*['\"`]?https?:|\brequire\s*\(\s*['\"](?:https?|net|axios|node-fetch)"
            r"['\"]\s*\)|\bfrom\s+['\"](?:axios|node-fetch)['\"]"
            r"|(?:^|[;&|(`$]\s*|\bthen\s+|\bdo\s+)(?:curl|wget|nc|ncat|telnet|ssh|scp)\s"
            r"|/dev/tcp/"
        ),
        where="code",
    ),
    Rule(
        "prompt-injection",
        "high",
        "text that tries to take over the model or hide things from the user",
        _re(
            r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
            r"(?:previous|prior|above|earlier|preceding|other)\s+"
            r"(?:instructions|prompts?|rules|messages|directions)"
            r"|\byou\s+are\s+now\s+(?!ready|able|in\b|done|set|connected|logged)"
            r"|\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention\s+(?:this\s+)?to|show|reveal"
            r"\s+(?:this\s+)?to)\s+the\s+user"
            r"|\bwithout\s+(?:telling|informing|asking|notifying)\s+the\s+user"
            r"|\b(?:reveal|print|output|leak|repeat)\s+(?:your|the)\s+system\s+prompt"
            r"|\bnew\s+system\s+prompt\b|<\s*/?\s*system\s*>|\[/?INST\]"
        ),
        where="doc",
    ),
    Rule(
        "hidden-instructions",
        "high",
        "an HTML comment (invisible when rendered) carries instructions",
    ),
    Rule(
        "invisible-characters",
        "high",
        "zero-width or bidirectional control characters hide text",
        re.compile("[\u200b\u200c\u200d\u2060\u180e\u202a-\u202e\u2066-\u2069]|(?<!^)\ufeff"),
    ),
    Rule("bundled-binary", "high", "bundles a compiled executable (ELF, Mach-O or PE)"),
    Rule(
        "executable-not-script",
        "medium",
        "an executable file that is not a readable script (no '#!' line)",
    ),
    Rule("symlink-escape", "high", "a symbolic link points outside the item's folder"),
    Rule("oversized-file", "medium", f"a file is larger than {MAX_FILE_BYTES // 1024} KB"),
    Rule(
        "oversized-total",
        "medium",
        f"the item is larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MB in total",
    ),
    Rule("network-use", "low", "uses the network (declared with the 'network' permission)"),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}

_BINARY_MAGIC = (
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"MZ",
)
_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_INSTRUCTION_WORDS = _re(
    r"\b(?:ignore|disregard|instructions?|you\s+(?:must|should|are|will)|assistant"
    r"|system\s+prompt|do\s+not\s+(?:tell|mention|reveal)|execute|exfiltrate|secrets?"
    r"|passwords?|api[\s_-]?keys?|tokens?|curl|wget|send\s+(?:the|all|it|this|them))\b"
)
MAX_PER_RULE_AND_FILE = 3


def _finding(rule_id: str, file: str, line: int | None, detail: str = "") -> Finding:
    rule = RULES_BY_ID[rule_id]
    message = f"{rule.message}: {detail}" if detail else rule.message
    return Finding(rule.id, rule.severity, file, line, message)


def _excerpt(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _kind(rel: str, head: bytes) -> str:
    suffix = Path(rel).suffix.lower()
    if suffix in DOC_SUFFIXES:
        return "doc"
    if suffix in CODE_SUFFIXES or head.startswith(b"#!"):
        return "code"
    return "data"


def _applies(rule: Rule, kind: str) -> bool:
    if rule.where == "program":
        return kind != "doc"
    return rule.where in ("text", kind)


def scan_text(rel: str, text: str, kind: str, declared: frozenset[str]) -> Iterator[Finding]:
    """Line rules over one text file (``kind``: doc, code or data)."""
    line_rules = [
        r
        for r in RULES
        if r.pattern is not None and _applies(r, kind) and r.id != "undeclared-network"
    ]
    network = RULES_BY_ID["undeclared-network"]
    network_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        for rule in line_rules:
            assert rule.pattern is not None
            match = rule.pattern.search(line)
            if match:
                yield _finding(rule.id, rel, number, _excerpt(match.group(0)))
        if kind == "code" and not network_seen and network.pattern is not None:
            match = network.pattern.search(line)
            if match:
                network_seen = True
                rule_id = "network-use" if "network" in declared else "undeclared-network"
                yield _finding(rule_id, rel, number, _excerpt(match.group(0)))
    if kind == "doc":
        for match in _COMMENT.finditer(text):
            if _INSTRUCTION_WORDS.search(match.group(1)):
                number = text.count("\n", 0, match.start()) + 1
                yield _finding("hidden-instructions", rel, number, _excerpt(match.group(1)))
    if rel.endswith(".py"):
        yield from _python_ast(rel, text)


def _python_ast(rel: str, text: str) -> Iterator[Finding]:
    """eval/exec/compile of anything but a literal string, and ``__import__`` of a name
    that is not a literal: how a script hides what it runs."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        first = node.args[0]
        literal = isinstance(first, ast.Constant) and isinstance(first.value, str | bytes)
        if name in ("eval", "exec", "compile") and not literal:
            yield _finding(
                "obfuscated-code", rel, node.lineno, f"{name}() of a value built at run time"
            )
        elif name == "__import__" and not literal:
            yield _finding(
                "obfuscated-code", rel, node.lineno, "__import__() of a name built at run time"
            )


def _file_findings(root: Path, rel: str, path: Path, declared: frozenset[str]) -> list[Finding]:
    root = root if root.is_dir() else root.parent
    if path.is_symlink():
        target = os.readlink(path)
        resolved = (path.parent / target).resolve()
        if os.path.isabs(target) or not resolved.is_relative_to(root.resolve()):
            return [_finding("symlink-escape", rel, None, f"→ {target}")]
        return []
    found: list[Finding] = []
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        found.append(_finding("oversized-file", rel, None, f"{size // 1024} KB"))
    with path.open("rb") as fh:
        head = fh.read(MAX_TEXT_SCAN_BYTES)
    if head.startswith(_BINARY_MAGIC[:6]) or (head.startswith(b"MZ") and b"PE\0\0" in head[:1024]):
        found.append(_finding("bundled-binary", rel, None))
        return found
    executable = os.access(path, os.X_OK)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if executable:
            found.append(_finding("executable-not-script", rel, None))
        return found  # images and other data: nothing to read
    if executable and not head.startswith(b"#!"):
        found.append(_finding("executable-not-script", rel, None))
    found.extend(scan_text(rel, text, _kind(rel, head), declared))
    return found


def scan_tree(root: Path, declared: Iterable[str] = ()) -> tuple[Finding, ...]:
    """Every finding under ``root``, most severe first, then by file and line."""
    perms = frozenset(declared)
    found: list[Finding] = []
    total = 0
    for rel, path in iter_files(root):
        if not path.is_symlink():
            total += path.stat().st_size
        found.extend(_file_findings(root, rel, path, perms))
    if total > MAX_TOTAL_BYTES:
        found.append(_finding("oversized-total", ".", None, f"{total // (1024 * 1024)} MB"))
    return tuple(
        sorted(_capped(found), key=lambda f: (SEVERITY_ORDER[f.severity], f.file, f.line or 0))
    )


def _capped(found: list[Finding]) -> list[Finding]:
    """At most a few findings per rule and file: the first ones, then a count."""
    seen: dict[tuple[str, str], int] = {}
    kept: list[Finding] = []
    for f in found:
        count = seen.get((f.rule, f.file), 0) + 1
        seen[(f.rule, f.file)] = count
        if count <= MAX_PER_RULE_AND_FILE:
            kept.append(f)
    for (rule, file), count in seen.items():
        if count > MAX_PER_RULE_AND_FILE:
            more = count - MAX_PER_RULE_AND_FILE
            kept.append(_finding(rule, file, None, f"{more} more line(s) like this"))
    return kept
