"""Make ``connectors`` mean the project's package while these tests run.

pytest puts ``tests/`` on ``sys.path`` (the root conftest has no ``__init__.py``), so
this folder would be importable as a namespace package ``connectors`` and
``tests/connectors/telegram`` would shadow ``connectors.telegram`` (the editable
install's finder comes after the path finder). Putting the project root first fixes it;
``pythonpath = ["."]`` in pytest's configuration would do the same for the whole suite.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)
for _name in [n for n in sys.modules if n == "connectors" or n.startswith("connectors.")]:
    if getattr(sys.modules[_name], "__file__", None) is None:  # a namespace from tests/
        del sys.modules[_name]
