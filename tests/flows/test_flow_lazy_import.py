import subprocess
import sys


def test_importing_flows_does_not_import_dbos() -> None:
    code = (
        "import sys, nexflow.flows, nexflow.flows.engine;"
        "assert 'dbos' not in sys.modules, 'dbos imported at start'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
