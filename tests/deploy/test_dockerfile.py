"""The Dockerfile, linted structurally (no Docker engine here to build it): its stages, what
each copies and from where, the runtime user, health check and defaults."""

import fnmatch
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

STAGES = ["web", "guest", "build", "runtime"]


@dataclass
class Stage:
    name: str
    image: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def parse(text: str) -> list[Stage]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    images = iter(parser.parent_images)  # FROM images with ARG defaults substituted
    stages: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            alias = re.search(r"\s+AS\s+(\S+)$", value, re.I)
            stages.append(Stage(alias[1] if alias else str(len(stages)), next(images)))
        elif stages and instruction != "COMMENT":
            stages[-1].instructions.append((instruction, value))
    return stages


def copy_sources(value: str) -> tuple[str | None, list[str]]:
    """(--from stage or None, source paths) of a COPY instruction."""
    words = json.loads(value) if value.lstrip().startswith("[") else value.split()
    source_stage = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--from="):
            source_stage = flag.removeprefix("--from=")
    return source_stage, words[:-1]


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out (its subset of the syntax: no ``!``)."""
    parts = path.rstrip("/").removeprefix("./").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):  # at any depth
            tails = ["/".join(parts[i:]) for i in range(len(parts))]
            if any(fnmatch.fnmatch(tail, pattern[3:]) for tail in tails):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern.rstrip("/")) for prefix in prefixes):
            return True
    return False


def lint(text: str) -> list[str]:
    """What would make the image wrong or unbuildable; empty when the Dockerfile is fine."""
    problems: list[str] = []
    stages = parse(text)
    names = [s.name for s in stages]
    patterns = ignore_patterns()
    for index, stage in enumerate(stages):
        for value in stage.values("COPY"):
            source_stage, sources = copy_sources(value)
            if source_stage is not None:
                if source_stage not in names[:index]:
                    problems.append(f"{stage.name}: COPY --from={source_stage}: no earlier stage")
                continue
            for source in sources:
                if not (REPO / source).exists():
                    problems.append(f"{stage.name}: COPY {source}: not in the repository")
                elif ignored(source, patterns):
                    problems.append(f"{stage.name}: COPY {source}: excluded by .dockerignore")
    final = stages[-1]
    users = final.values("USER")
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage must end as a non-root USER")
    if not any("/health" in h for h in final.values("HEALTHCHECK")):
        problems.append("the runtime stage needs a HEALTHCHECK on /health")
    if not any(re.search(r"(^|\s)NEXFLOW_HOME=/data(\s|$)", e) for e in final.values("ENV")):
        problems.append("the runtime stage must set NEXFLOW_HOME=/data")
    if "8080" not in " ".join(final.values("EXPOSE")).split():
        problems.append("the runtime stage must EXPOSE 8080")
    return problems


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return {s.name: s for s in parse(DOCKERFILE.read_text())}


def test_dockerfile_lints_clean() -> None:
    assert lint(DOCKERFILE.read_text()) == []


def test_stages_and_base_images(stages: dict[str, Stage]) -> None:
    assert list(stages) == STAGES
    assert stages["web"].image == "node:20-bookworm-slim"
    for name in ("guest", "build", "runtime"):
        assert stages[name].image == "python:3.11-slim-bookworm"


def test_web_stage_builds_graphstudio_like_build_web_sh(stages: dict[str, Stage]) -> None:
    runs = " && ".join(stages["web"].values("RUN"))
    assert "npm ci" in runs and "vite build" in runs
    # vite.config.ts writes the app to ../static/app: what the build stage copies from
    vite = (REPO / "connectors/web/app/vite.config.ts").read_text()
    assert 'resolve(here, "../static/app")' in vite
    assert stages["web"].values("WORKDIR") == ["/src/connectors/web/app"]


def test_app_and_guest_are_in_place_before_the_wheel_is_built(stages: dict[str, Stage]) -> None:
    build = stages["build"].instructions
    order = [value for name, value in build if name in ("COPY", "RUN")]
    install = next(i for i, v in enumerate(order) if "pip install ." in v)
    app = next(i for i, v in enumerate(order) if v.startswith("--from=web"))
    guest = next(i for i, v in enumerate(order) if v.startswith("--from=guest"))
    assert app < install and guest < install
    assert order[app].split()[-1] == "./connectors/web/static/app"
    # the wheel carries static/app/* because pyproject's package-data says so
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"connectors.web" = ["static/app/*.html", "static/app/assets/*"' in pyproject


def test_bundled_skills_and_panels_land_where_the_package_looks(stages: dict[str, Stage]) -> None:
    site = "/opt/venv/lib/python3.11/site-packages"
    copies = stages["build"].values("COPY")
    assert f"skills {site}/skills" in copies and f"panels {site}/panels" in copies
    # nexflow/skills/model.py: BUNDLED_SKILLS = parents[2] / "skills" of the module
    model = (REPO / "nexflow/skills/model.py").read_text()
    assert 'Path(__file__).resolve().parents[2] / "skills"' in model
    wiring = (REPO / "nexflow/panels/runtime/wiring.py").read_text()
    assert 'Path(__file__).resolve().parents[3] / "panels"' in wiring


def test_runtime_defaults(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    assert runtime.values("USER") == ["10001:10001"]
    assert "useradd --system --uid 10001" in " ".join(runtime.values("RUN"))
    (cmd,) = runtime.values("CMD")
    assert json.loads(cmd) == ["nexflow", "serve", "--host", "0.0.0.0", "--port", "8080"]
    (healthcheck,) = runtime.values("HEALTHCHECK")
    assert "http://127.0.0.1:8080/health" in healthcheck


def test_build_context_leaves_out_local_state() -> None:
    patterns = ignore_patterns()
    for path in (".venv", ".git", "connectors/web/app/node_modules", "nexflow/__pycache__", ".env"):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "nexflow", "skills", "panels", "scripts"):
        assert not ignored(path, patterns), path


# --- a broken Dockerfile is rejected -------------------------------------------------------------


def test_lint_rejects_a_broken_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    broken = (
        text.replace("USER 10001:10001", "USER root")
        .replace("COPY connectors/web/app/src ./src", "COPY connectors/web/app/source ./src")
        .replace("COPY --from=guest", "COPY --from=wasm")
        .replace("EXPOSE 8080", "EXPOSE 9090")
    )
    broken = re.sub(r"HEALTHCHECK .*?\n(?=ENTRYPOINT)", "", broken, flags=re.S)
    assert sorted(lint(broken)) == sorted(
        [
            "web: COPY connectors/web/app/source: not in the repository",
            "build: COPY --from=wasm: no earlier stage",
            "the runtime stage must end as a non-root USER",
            "the runtime stage needs a HEALTHCHECK on /health",
            "the runtime stage must EXPOSE 8080",
        ]
    )


def test_lint_rejects_copying_what_the_context_leaves_out() -> None:
    text = DOCKERFILE.read_text().replace("COPY panels ", "COPY .venv ")
    assert "build: COPY .venv: excluded by .dockerignore" in lint(text)
