"""What a panel may use: sandbox limits and granted capabilities.

Limits: ``panels.limits`` in the config, replaced for one template (panel id) by
``panels.template_limits.<id>``.

Capabilities follow the seed's model: a panel gets a capability only if its
NXML declares it (``<Capabilities>``) *and* it is granted, either for every
instance of a template in ``panels.grants.<id>`` or for one instance through
``POST /api/v1/panels/{id}/grants``. Grant strings: ``http:<host>`` (the host as
declared in ``<Http host=..>``) and ``file:<path>`` (as declared in ``<File
path=..>``, read mode; paths are relative to the workspace). A grant for
something the panel does not declare has no effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from nexflow.config.model import PanelLimitsConfig, PanelsConfig
from nexflow.panels.ast import NexusPanel
from nexflow.panels.runtime.errors import GrantInvalid
from nexflow.sandbox import Capabilities, SandboxLimits

MiB = 1024 * 1024
_GRANT = re.compile(r"(http:[A-Za-z0-9*.:-]{1,255}|file:[^\x00-\x1f]{1,512})")


def limits_for(config: PanelsConfig, template: str) -> SandboxLimits:
    chosen: PanelLimitsConfig = config.template_limits.get(template, config.limits)
    return SandboxLimits(
        fuel=chosen.fuel,
        memory_bytes=chosen.memory_mb * MiB,
        wall_time_ms=chosen.wall_time_ms,
    )


def check_grants(grants: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for grant in grants:
        if not isinstance(grant, str) or not _GRANT.fullmatch(grant):
            raise GrantInvalid(
                f"{grant!r} is not a grant; write 'http:<host>' or 'file:<workspace path>'"
            )
        out.append(grant)
    return tuple(dict.fromkeys(out))


def declared_grants(panel: NexusPanel) -> tuple[str, ...]:
    """The grant strings that would give the panel everything it declares."""
    out: list[str] = []
    for cap in panel.capabilities:
        if cap.kind == "http":
            out.append(f"http:{cap.target}")
        elif cap.kind == "file" and cap.mode != "write":
            out.append(f"file:{cap.target}")
    return tuple(out)


def capabilities_for(panel: NexusPanel, grants: Iterable[str], workspace_dir: Path) -> Capabilities:
    """Declared ∩ granted, as the sandbox's :class:`Capabilities`."""
    granted = {g.lower() if g.startswith("http:") else g for g in grants}
    hosts: set[str] = set()
    paths: set[str] = set()
    for cap in panel.capabilities:
        if cap.kind == "http" and f"http:{cap.target}".lower() in granted:
            host = cap.target.split(":", 1)[0]
            if not host.startswith("*."):  # the sandbox matches exact host names only
                hosts.add(host.lower())
        elif cap.kind == "file" and cap.mode != "write" and f"file:{cap.target}" in granted:
            paths.add(cap.target)
    if not hosts and not paths:
        return Capabilities()
    return Capabilities(
        http_hosts=frozenset(hosts),
        read_root=workspace_dir if paths else None,
        read_paths=frozenset(paths),
    )
