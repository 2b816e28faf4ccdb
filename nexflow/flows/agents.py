"""Named agent definitions: ``agents/<name>.yaml`` in a workspace (``docs/flows.md``).

An :class:`AgentDef` is a persona (system prompt text added to the turn), an optional
model route, an optional tool allowlist (missing: the default toolset) and an optional
token cap per invocation. Files are validated like flows: every problem comes back in one
:class:`~nexflow.flows.errors.FlowInvalid` with ``file:line:col: message``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nexflow.flows.errors import FlowError, FlowInvalid, FlowIssue
from nexflow.flows.model import FLOW_NAME
from nexflow.flows.yaml_marks import MAX_BYTES, MarkedYAML, PathKey

AGENT_DIR = "agents"


class AgentNotFound(FlowError):
    """The user has no agent of that name (or the name is not a valid agent name)."""


class AgentDef(BaseModel):
    """One ``agents/<name>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=FLOW_NAME)
    description: str = ""
    persona: str = Field("", max_length=20_000, description="Added to the system prompt")
    route: str | None = Field(None, min_length=1, description="A model route name")
    tools: tuple[str, ...] | None = Field(None, description="Allowlist; None: the default")
    budget_tokens: int | None = Field(None, gt=0, description="Token cap per invocation")


def agent_file(folder: Path, name: str) -> Path:
    """``agents/<name>.yaml`` in ``folder``; :class:`AgentNotFound` for a bad name."""
    if not re.match(FLOW_NAME, name):
        raise AgentNotFound(f"no agent named '{name}' (names: a-z, 0-9, '-', '_')")
    return folder / AGENT_DIR / f"{name}.yaml"


def load_agent(folder: Path, name: str) -> AgentDef:
    """The agent ``name`` of the workspace at ``folder``; :class:`AgentNotFound` when it
    has none, :class:`FlowInvalid` when its file does not validate (or its ``name``
    differs from the file's)."""
    path = agent_file(folder, name)
    rel = f"{AGENT_DIR}/{name}.yaml"
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise AgentNotFound(f"no agent named '{name}' (expected {rel})") from e
    except OSError as e:
        raise FlowInvalid([FlowIssue(rel, 0, 0, "cannot read the agent file")]) from e
    if len(raw) > MAX_BYTES:
        raise FlowInvalid([FlowIssue(rel, 0, 0, f"agent file larger than {MAX_BYTES}")])
    agent = load_agent_text(raw.decode("utf-8", errors="replace"), rel)
    if agent.name != name:
        raise FlowInvalid([FlowIssue(rel, 1, 1, f"name: '{agent.name}' must match '{name}'")])
    return agent


def load_agent_text(text: str, name: str = "<agent>") -> AgentDef:
    """Validate an agent definition's YAML; ``name`` appears in messages."""
    return _AgentLoader(name, text, "agent").load()


class _AgentLoader(MarkedYAML):
    def load(self) -> AgentDef:
        data = self._parse()
        if not isinstance(data, dict):
            raise FlowInvalid([*self._issues, FlowIssue(self._name, 1, 1, "an agent is a mapping")])
        agent: AgentDef | None = None
        try:
            agent = AgentDef.model_validate(data)
        except ValidationError as e:
            for err in e.errors():
                loc: PathKey = tuple(err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ")
                shown = ".".join(str(p) for p in loc)
                self._issue(loc, f"{shown}: {msg}" if shown else msg)
        if self._issues:
            raise FlowInvalid(self._issues)
        assert agent is not None
        return agent
