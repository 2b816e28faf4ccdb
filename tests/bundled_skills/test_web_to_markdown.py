"""web-to-markdown against pages served on loopback: conversion, caps, the allowlist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bundled_support import call_skill, failure, framed, refusal, run_skill, skill_gateway
from fakes_web import Answer, Site, page

from nexflow.skills import SkillPermissionDenied
from nexflow.skills.isolation import IsolationLevel

LOOPBACK = {"NEXFLOW_HTTP_ALLOW": "127.0.0.1"}

ARTICLE = """<!DOCTYPE html>
<html><head><title>Release notes &ndash; Nexflow</title>
<style>body { color: red }</style><script>var secret = "from-script";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/blog">Blog-nav-link</a></nav>
<header><p>Site banner</p></header>
<main>
<h1>Release <em>2.0</em></h1>
<p>Nexflow 2.0 is <strong>out</strong>. Read the <a href="/docs/upgrade?from=1">upgrade guide</a>
or <a href="javascript:void(0)">click here</a>.</p>
<h2>Changes</h2>
<ul><li>Faster start-up<li>New skills:
  <ol><li>weather</li><li>web-search</li></ol>
<li>Fixed <code>run_skill</code> output</ul>
<pre><code class="language-python">def hello():
    return "hi"
</code></pre>
<blockquote><p>Best release yet.</p></blockquote>
<table><caption>Timings</caption><tr><th>Step</th><th>ms</th></tr>
<tr><td>start</td><td>120</td></tr><tr><td>reply</td><td>8</td></tr></table>
<p><img src="/img/chart.png" alt="Start-up chart"><img src="/spacer.gif"></p>
<div style="display: none">hidden-text</div>
</main>
<footer>Copyright footer-text</footer>
</body></html>"""


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as fake:
        fake.pages["/release"] = page(ARTICLE)
        fake.pages["/old"] = Answer(301, b"", {"Location": "/release"})
        fake.pages["/notes.txt"] = page("plain notes\nline two", ctype="text/plain")
        fake.pages["/report.pdf"] = page("%PDF-1.7", ctype="application/pdf")
        fake.pages["/long"] = page(
            "".join(f"<p>Paragraph {i} {'word ' * 40}</p>" for i in range(60))
        )
        fake.pages["/cp1251"] = Answer(
            200,
            '<html><head><meta charset="windows-1251"><title>Привет</title></head>'
            "<body><p>Добрый день</p></body></html>".encode("cp1251"),
            {"Content-Type": "text/html"},
        )
        fake.pages["/slow"] = Answer(200, b"<p>late</p>", {"Content-Type": "text/html"}, delay=3)
        fake.pages["/huge"] = page("<p>" + "x" * 1_100_000 + "</p>")
        fake.pages["/to-metadata"] = Answer(302, b"", {"Location": "http://169.254.169.254/"})
        yield fake


async def test_article_to_markdown(workspace: Path, site: Site, level: IsolationLevel) -> None:
    r = await run_skill(
        "web-to-markdown", {"url": f"{site.url}/release"}, workspace, LOOPBACK, level=level
    )
    assert r.ok and r.data is not None, r.stderr_tail
    md = r.data["markdown"]
    assert r.data["title"] == "Release notes – Nexflow" and r.data["status"] == 200
    assert md.startswith("# Release *2.0*\n\nNexflow 2.0 is **out**.")
    assert f"[upgrade guide]({site.url}/docs/upgrade?from=1)" in md
    assert "or click here." in md  # a javascript: link keeps its text only
    assert "## Changes\n\n- Faster start-up\n- New skills:\n  1. weather\n  2. web-search\n" in md
    assert "- Fixed `run_skill` output" in md
    assert '```python\ndef hello():\n    return "hi"\n```' in md
    assert "> Best release yet." in md
    assert "Timings\n\n| Step | ms |\n| --- | --- |\n| start | 120 |\n| reply | 8 |" in md
    assert f"![Start-up chart]({site.url}/img/chart.png)" in md and "spacer" not in md
    for dropped in ("from-script", "color: red", "Blog-nav-link", "footer-text", "hidden-text"):
        assert dropped not in md
    assert "Site banner" not in md  # outside <main>
    assert r.data["truncated"] is False and r.data["chars"] == len(md)


async def test_redirect_text_and_charset(workspace: Path, site: Site) -> None:
    r = await run_skill("web-to-markdown", {"url": f"{site.url}/old"}, workspace, LOOPBACK)
    assert r.ok and r.data is not None and r.data["url"] == f"{site.url}/release"
    r = await run_skill("web-to-markdown", {"url": f"{site.url}/notes.txt"}, workspace, LOOPBACK)
    assert r.ok and r.data is not None and r.data["markdown"] == "plain notes\nline two"
    r = await run_skill("web-to-markdown", {"url": f"{site.url}/cp1251"}, workspace, LOOPBACK)
    assert r.ok and r.data is not None
    assert r.data["title"] == "Привет" and r.data["markdown"] == "Добрый день"


async def test_length_cap_with_a_note(workspace: Path, site: Site) -> None:
    payload = {"url": f"{site.url}/long", "max_chars": 1000}
    r = await run_skill("web-to-markdown", payload, workspace, LOOPBACK)
    assert r.ok and r.data is not None and r.data["truncated"] is True
    md = r.data["markdown"]
    body, note = md.split("\n\n[… cut here: ")
    assert len(body) <= 1000 and body.endswith("word")  # cut on a paragraph boundary
    left = int(note.split()[0])
    assert left == r.data["chars"] - len(body) and "larger max_chars" in note


async def test_service_errors(workspace: Path, site: Site) -> None:
    r = await run_skill("web-to-markdown", {"url": f"{site.url}/missing"}, workspace, LOOPBACK)
    assert f"{site.url}/missing answered 404" in failure(r)
    r = await run_skill("web-to-markdown", {"url": f"{site.url}/report.pdf"}, workspace, LOOPBACK)
    assert "is application/pdf, not a web page" in failure(r)
    slow = {"url": f"{site.url}/slow", "timeout_sec": 0.5}
    r = await run_skill("web-to-markdown", slow, workspace, LOOPBACK)
    assert "timed out: 127.0.0.1 did not answer within 0.5 s" in failure(r)
    r = await run_skill("web-to-markdown", {"url": f"{site.url}/huge"}, workspace, LOOPBACK)
    assert "the limit is 1048576" in refusal(r)


@pytest.mark.parametrize(
    ("allow", "path", "extra", "why"),
    [
        ("example.com", "/release", {}, "'127.0.0.1' is not on the allowlist"),
        ("localhost", "LOCALHOST/release", {}, "a private/loopback"),
        ("127.0.0.1", "/to-metadata", {}, "'169.254.169.254' is not on the allowlist"),
        ("127.0.0.1", "/release", {"allow_hosts": ["example.com"]}, "not in this request's"),
        ("127.0.0.1", "/release", {"max_chars": 0}, "'max_chars' must be a number above 0"),
        ("127.0.0.1", "file:///etc/passwd", {}, "only http and https"),
    ],
)
async def test_refusals(
    workspace: Path, site: Site, allow: str, path: str, extra: dict[str, object], why: str
) -> None:
    if path.startswith("LOCALHOST"):
        url = f"http://localhost:{site.port}{path.removeprefix('LOCALHOST')}"
    else:
        url = path if "://" in path else f"{site.url}{path}"
    r = await run_skill(
        "web-to-markdown", {"url": url, **extra}, workspace, {"NEXFLOW_HTTP_ALLOW": allow}
    )
    assert why in refusal(r)


async def test_allowlist_must_be_granted(workspace: Path, site: Site) -> None:
    with pytest.raises(SkillPermissionDenied, match="NEXFLOW_HTTP_ALLOW"):
        await run_skill(
            "web-to-markdown", {"url": f"{site.url}/release"}, workspace, {}, host_env=LOOPBACK
        )
    assert site.requests == []


async def test_page_through_the_gateway_is_untrusted(home: Path, site: Site) -> None:
    async with skill_gateway(home, {"web-to-markdown": LOOPBACK}) as gw:
        reply, tool, _ = await call_skill(gw, "web-to-markdown", {"url": f"{site.url}/release"})
        assert "Nexflow 2.0 is **out**" in reply["reply"]
        trust, result = framed(tool)
        assert trust == "untrusted" and result["title"] == "Release notes – Nexflow"
        assert site.requests[-1].path == "/release"
