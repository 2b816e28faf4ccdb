"""What GraphStudio's flow editor needs besides ``/api/v1/flows``: live validation without
saving, and the node types with their settings and typed ports.

``POST /api/v1/flows/validate`` runs the same loader as ``save_flow``
(:func:`nexflow.flows.loader.load_flow_text`, plus the name-matches-file check) and answers
every problem with its line and column, so the canvas can mark the node and the text view
the line while the user edits; nothing is written. ``GET /api/v1/flows/node-types`` is
derived from the Pydantic node models in :mod:`nexflow.flows.model` (fields, types,
defaults, enums), never copied by hand, so a field added to a node shows up in the editor's
settings form without a front-end change. Ports are the flow format's edges: every node has
one data input (``needs``), a data output, an error output (``on_error``); a condition adds
its ``then`` / ``else`` branch outputs.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from typing import Any, Literal, get_args, get_origin

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from nexflow.flows import model as flow_model
from nexflow.flows.errors import FlowInvalid, FlowIssue
from nexflow.flows.loader import load_flow_text
from nexflow.web.identity import web_user
from nexflow.web.models_common import INVALID_REQUEST
from nexflow.web.routes_flows import MAX_YAML_CHARS, NAME_PATTERN

router = APIRouter()

FieldKind = Literal[
    "string", "text", "number", "integer", "boolean", "enum", "list", "object", "time"
]
PortKind = Literal["data", "branch", "error"]
# Text fields that hold prose or an expression: the editor shows a multi-line box.
_TEXT_FIELDS = {"prompt", "expr", "if", "detail", "description"}
# Edges, edited by connecting ports rather than in the form.
_EDGE_FIELDS = {"needs", "then", "else", "on_error"}


class ValidateFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(max_length=MAX_YAML_CHARS, description="The flow's YAML source")
    name: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="The file name it will be saved as: its `name:` must match",
    )


class Problem(BaseModel):
    line: int = Field(description="1-based; 0 when unknown")
    column: int = Field(description="1-based; 0 when unknown")
    message: str
    text: str = Field(description="The whole `file:line:col: message`")


class Validation(BaseModel):
    valid: bool
    errors: list[Problem] = Field(description="Every problem, in file order")


class FieldSpec(BaseModel):
    """One setting of a node type, from its Pydantic field."""

    name: str = Field(description="The YAML key (its alias, e.g. `if`)")
    kind: FieldKind
    required: bool
    default: Any = Field(None, description="The default when not required (JSON)")
    options: list[str] = Field(default_factory=list, description="kind enum: the values")
    edge: bool = Field(description="An edge (needs, then, else, on_error): set by connecting")
    common: bool = Field(description="Shared by every node type (needs, retry, timeout_s, …)")


class PortSpec(BaseModel):
    name: str = Field(description="in, out, then, else, error")
    kind: PortKind
    field: str = Field(description="The YAML field a connection through this port writes")


class NodeTypeSpec(BaseModel):
    type: str
    description: str = Field(description="The model's docstring, first paragraph")
    fields: list[FieldSpec]
    inputs: list[PortSpec]
    outputs: list[PortSpec]


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _kind(name: str, info: FieldInfo) -> tuple[FieldKind, list[str]]:
    annotation = _strip_optional(info.annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return "enum", [str(a) for a in get_args(annotation)]
    if origin is list:
        return "list", []
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "object", []
    if annotation is bool:
        return "boolean", []
    if annotation is int:
        return "integer", []
    if annotation is float:
        return "number", []
    if annotation is datetime:
        return "time", []
    return ("text" if name in _TEXT_FIELDS else "string"), []


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _node_models() -> list[type[BaseModel]]:
    union = get_args(flow_model.Node)[0]  # Annotated[Union[...], Field(...)]
    return [m for m in get_args(union) if isinstance(m, type) and issubclass(m, BaseModel)]


def node_type_spec(model: type[BaseModel]) -> NodeTypeSpec:
    """The editor's description of one node model."""
    common = set(flow_model._NodeBase.model_fields)
    node_type = str(get_args(model.model_fields["type"].annotation)[0])
    fields: list[FieldSpec] = []
    for attr, info in model.model_fields.items():
        if attr == "type":
            continue
        name = info.alias or attr
        kind, options = _kind(name, info)
        fields.append(
            FieldSpec(
                name=name,
                kind=kind,
                required=info.is_required(),
                default=_default(info),
                options=options,
                edge=name in _EDGE_FIELDS,
                common=attr in common,
            )
        )
    # own fields first, then the shared ones, each in declaration order
    fields.sort(key=lambda f: f.common)
    outputs = [PortSpec(name="out", kind="data", field="needs")]
    if node_type == "condition":
        outputs += [
            PortSpec(name="then", kind="branch", field="then"),
            PortSpec(name="else", kind="branch", field="else"),
        ]
    outputs.append(PortSpec(name="error", kind="error", field="on_error"))
    doc = (model.__doc__ or "").strip().split("\n\n")[0]
    return NodeTypeSpec(
        type=node_type,
        description=" ".join(doc.replace("``", "").split()),
        fields=fields,
        inputs=[PortSpec(name="in", kind="data", field="needs")],
        outputs=outputs,
    )


@router.get("/api/v1/flows/node-types", response_model=list[NodeTypeSpec])
async def node_types(request: Request) -> list[NodeTypeSpec]:
    """Every node type of the flow format with its settings and typed ports."""
    await web_user(request)
    return [node_type_spec(m) for m in _node_models()]


def _problem(issue: FlowIssue) -> Problem:
    return Problem(line=issue.line, column=issue.column, message=issue.message, text=str(issue))


@router.post(
    "/api/v1/flows/validate",
    response_model=Validation,
    responses={422: INVALID_REQUEST},
)
async def validate_flow(body: ValidateFlow, request: Request) -> Validation:
    """Check a flow's YAML as ``POST /api/v1/flows`` would, without saving it."""
    await web_user(request)
    rel = f"flows/{body.name}.yaml" if body.name else "flows/<new>.yaml"
    try:
        flow = load_flow_text(body.yaml, rel)
    except FlowInvalid as exc:
        return Validation(valid=False, errors=[_problem(i) for i in exc.issues])
    if body.name is not None and flow.name != body.name:
        line, col = _name_mark(body.yaml)
        issue = FlowIssue(
            rel, line, col, f"name: '{flow.name}' must match the file name '{body.name}'"
        )
        return Validation(valid=False, errors=[_problem(issue)])
    return Validation(valid=True, errors=[])


def _name_mark(text: str) -> tuple[int, int]:
    """Line and column of the top-level ``name:`` key (1, 1 when not found)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"name\s*:", line):
            return number, 1
    return 1, 1
