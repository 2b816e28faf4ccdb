"""Templates installed with `nexflow panels install` (<home>/panels) can be opened."""

from pathlib import Path

from nexflow.panels.install import PanelInstaller
from nexflow.testing.harness import GatewayHarness

CLEAN = Path(__file__).resolve().parents[1] / "skills_install" / "fixtures" / "panel-clean"


async def test_an_installed_template_opens_beside_the_bundled_ones(tmp_path: Path) -> None:
    source = tmp_path / "src" / "standup"
    source.mkdir(parents=True)
    old, new = 'id="todo" title="To-do"', 'id="standup" title="Stand-up"'
    (source / "standup.nxml").write_text((CLEAN / "todo.nxml").read_text().replace(old, new))
    home = tmp_path / "home"
    installer = PanelInstaller.at_home(home)
    installer.commit(installer.plan(str(source)))
    async with GatewayHarness(home) as gw:
        listed = (await gw.http.get("/api/v1/panel-templates")).json()
        assert {"standup", "todo", "notes"} <= {t["name"] for t in listed}
        created = await gw.http.post("/api/v1/panels", json={"template": "standup"})
        assert created.status_code in (200, 201), created.text
        assert created.json()["title"] == "Stand-up"
