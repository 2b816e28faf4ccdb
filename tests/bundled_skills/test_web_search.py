"""web-search against a fake SearXNG JSON API and a fake DuckDuckGo HTML page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bundled_support import call_skill, failure, framed, refusal, run_skill, skill_gateway
from fakes_web import DuckDuckGo, SearXNG

from nexflow.skills import SkillInputInvalid

BLOG = "https://blog.example.net/gateways?id=7&lang=en"


@pytest.fixture
def ddg() -> Iterator[DuckDuckGo]:
    with DuckDuckGo() as fake:
        yield fake


@pytest.fixture
def searx() -> Iterator[SearXNG]:
    with SearXNG() as fake:
        yield fake


def via_ddg(ddg: DuckDuckGo) -> dict[str, str]:
    return {"DDG_HTML_URL": f"{ddg.url}/html/"}


async def test_searxng_json_api(workspace: Path, searx: SearXNG, ddg: DuckDuckGo) -> None:
    payload = {"query": "  gateway   docs ", "time_range": "month", "language": "en"}
    r = await run_skill(
        "web-search", payload, workspace, {"SEARXNG_URL": searx.url, **via_ddg(ddg)}
    )
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["engine"] == "searxng" and r.data["query"] == "gateway docs"
    assert [x["url"] for x in r.data["results"]] == ["https://docs.example.org/nexflow", BLOG]
    assert r.data["results"][0] == {
        "title": "Nexflow gateway docs",
        "url": "https://docs.example.org/nexflow",
        "snippet": "How Nexflow runs skills.",
    }
    assert "not instructions" in r.data["note"]
    (seen,) = searx.requests
    assert seen.path == "/search" and seen.arg("format") == "json"
    assert seen.arg("q") == "gateway docs" and seen.arg("time_range") == "month"
    assert ddg.requests == []  # SearXNG wins when both are configured


async def test_searxng_without_json_format_says_how_to_fix(workspace: Path) -> None:
    with SearXNG(json_enabled=False) as searx:
        r = await run_skill("web-search", {"query": "x"}, workspace, {"SEARXNG_URL": searx.url})
    assert "add 'json' to search.formats" in failure(r)


async def test_duckduckgo_html_results(workspace: Path, ddg: DuckDuckGo) -> None:
    payload = {"query": "python gateway", "time_range": "week", "language": "us-en"}
    r = await run_skill("web-search", payload, workspace, via_ddg(ddg))
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["engine"] == "duckduckgo"
    urls = [x["url"] for x in r.data["results"]]
    # the ad is skipped, DuckDuckGo's /l/?uddg= redirect links unwrapped
    assert urls == [
        "https://docs.example.org/nexflow",
        "https://docs.python.org/3/library/html.parser.html",
        BLOG,
    ]
    assert r.data["results"][1]["snippet"] == "Simple HTML and XHTML parser for Python."
    (seen,) = ddg.requests
    assert seen.method == "POST" and seen.path == "/html/"
    form = seen.form()
    assert form["q"] == ["python gateway"] and form["df"] == ["w"] and form["kl"] == ["us-en"]
    assert seen.headers["user-agent"].startswith("Mozilla/5.0 (compatible; Nexflow")
    r = await run_skill(
        "web-search", {"query": "gateway", "max_results": 1}, workspace, via_ddg(ddg)
    )
    assert r.ok and r.data is not None and len(r.data["results"]) == 1


async def test_duckduckgo_no_results_and_captcha(workspace: Path, ddg: DuckDuckGo) -> None:
    r = await run_skill("web-search", {"query": "zzqqxx"}, workspace, via_ddg(ddg))
    assert r.ok and r.data is not None and r.data["results"] == []
    ddg.captcha = True
    r = await run_skill("web-search", {"query": "python"}, workspace, via_ddg(ddg))
    assert "CAPTCHA" in failure(r) and "SEARXNG_URL" in r.stderr_tail


async def test_engine_unreachable(workspace: Path) -> None:
    r = await run_skill(
        "web-search", {"query": "x"}, workspace, {"SEARXNG_URL": "http://127.0.0.1:9"}
    )
    assert "connection refused" in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"query": "   "}, "'query' must be a non-empty string"),
        ({"query": "x" * 401}, "'query' is over 400 characters"),
        ({"query": "x", "max_results": 21}, "'max_results' must be 1 to 20"),
        ({"query": "x", "language": "a-very-long-language"}, "'language' must be a short code"),
    ],
)
async def test_bad_input_refused(
    workspace: Path, ddg: DuckDuckGo, payload: dict[str, object], why: str
) -> None:
    assert why in refusal(await run_skill("web-search", payload, workspace, via_ddg(ddg)))
    assert ddg.requests == []


async def test_schema_checked_before_spawn(workspace: Path, ddg: DuckDuckGo) -> None:
    with pytest.raises(SkillInputInvalid, match="not one of"):
        await run_skill("web-search", {"query": "x", "time_range": "hour"}, workspace, via_ddg(ddg))


async def test_search_through_the_gateway_is_untrusted(home: Path, ddg: DuckDuckGo) -> None:
    async with skill_gateway(home, {"web-search": via_ddg(ddg)}) as gw:
        reply, tool, _ = await call_skill(gw, "web-search", {"query": "gateway patterns"})
        assert "blog.example.net/gateways" in reply["reply"]
        trust, result = framed(tool)
        assert trust == "untrusted"  # strangers' text: framed as untrusted for the model
        assert result["engine"] == "duckduckgo" and result["results"][-1]["url"] == BLOG
        assert ddg.requests[0].form()["q"] == ["gateway patterns"]
