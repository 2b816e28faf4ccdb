from __future__ import annotations

import json
import re

import jsonschema
from nxml_helpers import PANELS_DIR, ROOT

from nexflow.panels import LayoutEngine, parse, validate
from nexflow.panels.docgen import components_markdown
from nexflow.panels.schema import panel_json_schema, render_json_schema

SNAPSHOT = ROOT / "tests" / "panels" / "data" / "nxml-ast.schema.json"


def test_panel_schema_is_valid_and_describes_the_ast(server_monitor_xml: str) -> None:
    schema = panel_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(parse(server_monitor_xml).model_dump(mode="json"), schema)
    for path in PANELS_DIR.glob("*.nxml"):
        jsonschema.validate(parse(path.read_text()).model_dump(mode="json"), schema)


def test_panel_schema_is_stable() -> None:
    """Changing the AST changes the protocol: regenerate the snapshot on purpose with
    ``python -m nexflow.panels.docgen schema > tests/panels/data/nxml-ast.schema.json``."""
    assert panel_json_schema() == panel_json_schema()
    assert panel_json_schema() == json.loads(SNAPSHOT.read_text())


def test_render_schema_is_valid(server_monitor_xml: str) -> None:
    schema = render_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    tree = LayoutEngine().layout(parse(server_monitor_xml))
    jsonschema.validate(tree.model_dump(mode="json"), schema)
    jsonschema.validate(tree.with_values({}).model_dump(mode="json"), schema)


def test_components_doc_is_generated_from_the_catalogue() -> None:
    """Regenerate with ``python -m nexflow.panels.docgen > docs/components.md``."""
    assert (ROOT / "docs" / "components.md").read_text() == components_markdown()


def _json_block(doc: str, marker: str) -> object:
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)```", doc, re.S)
    assert match, f"docs/protocol.md lost its {marker} example"
    return json.loads(match.group(1))


def test_protocol_doc_examples_are_true(server_monitor_xml: str) -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    panel = parse(server_monitor_xml)
    assert _json_block(doc, "example:server-monitor-ast") == panel.model_dump(mode="json")
    tree = LayoutEngine().layout(panel)
    assert _json_block(doc, "example:server-monitor-render") == tree.model_dump(mode="json")


def test_every_bundled_template_is_clean() -> None:
    names = sorted(p.stem for p in PANELS_DIR.glob("*.nxml"))
    assert {"server-monitor", "todo", "notes", "flowchart", "dashboard"} <= set(names)
    assert len(names) >= 6
    for name in names:
        panel = parse((PANELS_DIR / f"{name}.nxml").read_text(encoding="utf-8"))
        assert panel.id == name
        assert validate(panel) == [], name
        assert LayoutEngine().layout(panel).warnings == (), name
