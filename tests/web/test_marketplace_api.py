"""The marketplace API: index entries, a review with the scan's findings, and installs
that refuse a flagged entry unless the owner approves its findings."""

import hashlib
import json
from pathlib import Path

from nexflow.testing.harness import GatewayHarness

FIXTURES = Path(__file__).resolve().parents[1] / "skills_install" / "fixtures"


def index_of(tmp_path: Path, names: list[str]) -> Path:
    skills = []
    for name in names:
        folder = FIXTURES / name
        files = {
            p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        skills.append(
            {
                "slug": name,
                "source": str(folder),
                "version": "1.0",
                "sha256": files,
                "description": f"the {name} fixture",
            }
        )
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"skills": skills}))
    return path


async def test_review_and_install(tmp_path: Path) -> None:
    index = index_of(tmp_path, ["clean", "pipe-to-shell"])
    config = tmp_path / "config.yml"
    config.write_text(
        f"skills:\n  index: {json.dumps(str(index))}\n"
        "web:\n  users: {ana: ana-token-0123456789abcdef}\n"
    )
    async with GatewayHarness(tmp_path / "home", config_file=config) as gw:
        listed = (await gw.http.get("/api/v1/marketplace")).json()
        assert [(e["slug"], e["installed"]) for e in listed["entries"]] == [
            ("clean", False),
            ("pipe-to-shell", False),
        ]
        hostile = (await gw.http.get("/api/v1/marketplace/skill/pipe-to-shell")).json()
        assert hostile["flagged"] and any(f["severity"] == "high" for f in hostile["findings"])
        refused = await gw.http.post("/api/v1/marketplace/skill/pipe-to-shell/install", json={})
        assert refused.status_code == 409 and refused.json()["review"]["flagged"]
        assert not (gw.home / "skills" / "pipe-to-shell").exists()
        done = await gw.http.post("/api/v1/marketplace/skill/clean/install", json={})
        assert done.status_code == 201, done.text
        listed = (await gw.http.get("/api/v1/marketplace")).json()
        assert ("clean", True) in [(e["slug"], e["installed"]) for e in listed["entries"]]
        lock = json.loads((gw.home / "skills.lock").read_text())
        assert "clean" in json.dumps(lock)
        # A web user is not the owner: nothing is listed or installed for them.
        ana = {"Authorization": "Bearer ana-token-0123456789abcdef"}
        assert (await gw.http.get("/api/v1/marketplace", headers=ana)).status_code == 403
        missing = await gw.http.get("/api/v1/marketplace/skill/nope")
        assert missing.status_code == 422 and "nope" in missing.json()["error"]["message"]


async def test_no_index_configured(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path / "home") as gw:
        listed = (await gw.http.get("/api/v1/marketplace")).json()
        assert listed["entries"] == [] and listed["indexes"] == {"skill": None, "panel": None}
        review = await gw.http.get("/api/v1/marketplace/skill/clean")
        assert review.status_code == 422 and "skills.index" in review.json()["error"]["message"]
