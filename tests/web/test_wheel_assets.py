"""A wheel built from the tree carries GraphStudio (the built app and Swagger UI's files):
someone who installs it needs no Node to get the web workspace."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "connectors" / "web" / "static" / "app"
pytestmark = pytest.mark.slow


def test_the_wheel_has_the_built_app(tmp_path: Path) -> None:
    build = subprocess.run([str(ROOT / "scripts" / "build_web.sh")], check=False, timeout=600)
    assert build.returncode == 0 and (APP / "index.html").is_file()
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(
        [*pip, "-w", str(tmp_path), str(ROOT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("nexflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    built = {
        "connectors/web/static/app/" + p.relative_to(APP).as_posix()
        for p in APP.rglob("*")
        if p.is_file()
    }
    assert built and built <= names, sorted(built - names)[:5]
    assert "connectors/web/static/app/swagger/swagger-ui-bundle.js" in names
