"""The flow editor's endpoints through the real gateway: ``POST /api/v1/flows/validate``
answers every problem with line and column and writes nothing; ``GET
/api/v1/flows/node-types`` lists every node type of the model with its settings and
typed ports."""

from __future__ import annotations

from typing import get_args

from nexflow.flows.model import NodeType
from nexflow.testing.harness import GatewayHarness

GOOD = """\
# a comment
name: hello
nodes:
  a: {type: transform, expr: "1"}
  b: {type: transform, needs: [a], expr: "nodes.a.output + 1"}
"""
BAD = """\
name: hello
nodes:
  a: {type: transform, expr: "1"}
  b:
    type: transform
    needs: [nope]
    expr: "__import__('os')"
"""


async def test_validate_good_bad_and_name(gw: GatewayHarness) -> None:
    ok = await gw.http.post("/api/v1/flows/validate", json={"yaml": GOOD, "name": "hello"})
    assert ok.status_code == 200 and ok.json() == {"valid": True, "errors": []}

    bad = (await gw.http.post("/api/v1/flows/validate", json={"yaml": BAD})).json()
    assert bad["valid"] is False
    where = {(e["line"], e["column"]) for e in bad["errors"]}
    assert (6, 13) in where  # the unknown id in needs
    assert any("unknown node id 'nope'" in e["message"] for e in bad["errors"])
    assert all(e["text"].startswith("flows/<new>.yaml:") for e in bad["errors"])

    syntax = (await gw.http.post("/api/v1/flows/validate", json={"yaml": "name: [\n"})).json()
    assert syntax["valid"] is False and syntax["errors"][0]["message"].startswith("YAML")

    other = (await gw.http.post("/api/v1/flows/validate", json={"yaml": GOOD, "name": "x"})).json()
    assert other["valid"] is False
    assert (
        other["errors"][0]["line"] == 2
        and "must match the file name" in other["errors"][0]["message"]
    )

    refused = await gw.http.post("/api/v1/flows/validate", json={"yaml": GOOD, "name": "Bad Name"})
    assert refused.status_code == 422
    # nothing was saved
    assert (await gw.http.get("/api/v1/flows")).json() == []


async def test_node_types_follow_the_model(gw: GatewayHarness) -> None:
    resp = await gw.http.get("/api/v1/flows/node-types")
    assert resp.status_code == 200
    types = {t["type"]: t for t in resp.json()}
    assert set(types) == set(get_args(NodeType))
    cond = types["condition"]
    assert [p["name"] for p in cond["outputs"]] == ["out", "then", "else", "error"]
    assert [p["name"] for p in cond["inputs"]] == ["in"]
    fields = {f["name"]: f for f in cond["fields"]}
    assert fields["if"]["required"] and fields["if"]["kind"] == "text"
    assert fields["then"]["edge"] and fields["needs"]["common"] and fields["needs"]["edge"]
    merge = {f["name"]: f for f in types["merge"]["fields"]}
    assert merge["strategy"]["kind"] == "enum" and merge["strategy"]["options"] == ["all", "any"]
    assert merge["strategy"]["default"] == "all"
    retry = {f["name"]: f for f in types["tool"]["fields"]}["retry"]
    assert retry["kind"] == "object" and retry["default"]["tries"] == 1
    assert [p["kind"] for p in types["tool"]["outputs"]] == ["data", "error"]
    assert types["transform"]["description"]
