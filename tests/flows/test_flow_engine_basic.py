from flows_support import FakeHost, Script

from nexflow.flows import FlowEngine, load_flow_text

SIMPLE = """
name: simple
inputs:
  who: {type: string, required: true}
nodes:
  a: {type: tool, tool: greet, args: {who: "${inputs.who}"}}
  b: {type: transform, needs: [a], expr: "nodes.a.output.msg + '!'"}
"""


async def test_simple_run_completes(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["greet"] = Script(output={"msg": "hi"}, tokens=5)
    run_id = await engine.start(load_flow_text(SIMPLE), {"who": "bob"}, owner="u1")
    run = await engine.wait(run_id, timeout_s=20)
    assert run.status == "completed", run
    assert [n.status for n in run.nodes] == ["completed", "completed"]
    assert run.output == {"tokens": 5, "outputs": {"a": {"msg": "hi"}, "b": "hi!"}}
    assert host.calls == [("greet", "a", f"{run_id}:a:1")]
    assert run.progress == 100
    assert run.tokens_in == 5
