"""GraphStudio in the browser: first-load JavaScript, time to an interactive workspace, and
state change → DOM latency, against the classic chat page measured in the same run.

    .venv/bin/python bench/graphstudio_bench.py [--rounds N] [--changes N] [--json FILE]

- **First load**: the scripts and stylesheets ``index.html`` pulls in before anything is
  clicked (its entry module, the modules it preloads, CSS), gzipped at level 9 as a server
  would send them; the editors (flowchart, code, notes) load on demand and are listed apart.
- **Interactive**: a gateway (``nexflow serve`` in a subprocess, fake model, fresh home)
  with a to-do panel in the default workspace; headless Chromium opens ``/`` in a fresh
  context each round; the clock runs from navigation start to the moment the panel's input
  can take text. The classic chat page (``/chat``, to its input) is the baseline.
- **State change → DOM**: with the workspace open, the page itself calls the panel's tool
  (``add_item``) and a MutationObserver notes when the new item's text appears; the figure
  is the time from the request's start (so it includes the tool call) and, apart, the
  tool call's own HTTP round trip. Target ≤ 100 ms p50 on loopback.

Chromium is ``/usr/bin/chromium`` (Playwright's own download is not used).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / "connectors" / "web" / "static" / "app"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def gz_kb(path: Path) -> float:
    return round(len(gzip.compress(path.read_bytes(), 9)) / 1024, 1)


def first_load() -> dict[str, Any]:
    """Gzipped sizes of what index.html loads, and of the chunks loaded on demand."""
    index = (BUILT / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="/app/([^"]+\.(?:js|css))"', index)
    eager = {ref: gz_kb(BUILT / ref) for ref in refs}
    lazy = {
        p.name: gz_kb(p)
        for p in sorted((BUILT / "assets").glob("*.js"))
        if f"assets/{p.name}" not in eager
    }
    return {
        "first_load_kb_gz": round(sum(eager.values()), 1),
        "first_load_js_kb_gz": round(sum(v for k, v in eager.items() if k.endswith(".js")), 1),
        "first_load_files": eager,
        "on_demand_kb_gz": round(sum(lazy.values()), 1),
        "largest_on_demand": sorted(lazy.items(), key=lambda kv: -kv[1])[:5],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Gateway:
    """``nexflow serve`` in a subprocess with a fresh home, the fake model and panels on."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gateway:
        env = {
            **os.environ,
            "NEXFLOW_HOME": str(self.home),
            "NEXFLOW_LLM_MODEL": "openai/bench",
            "NEXFLOW_LLM__OLLAMA__PROBE": "false",
            "NEXFLOW_MEMORY__EMBEDDER": "none",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nexflow", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the gateway did not start in 60 s")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


async def browser_figures(url: str, rounds: int, changes: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        panel = (await http.post("/api/v1/panels", json={"template": "todo"})).json()
        panel_id = panel["id"]
        # The first render after a start loads the Wasm sandbox (seconds, once per process):
        # timed apart, then the rounds measure what every later page load costs.
        started = time.perf_counter()
        (await http.get(f"/api/v1/panels/{panel_id}")).raise_for_status()
        sandbox_ms = (time.perf_counter() - started) * 1000
    item_input = f'article[data-panel="{panel_id}"] input'
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            app_ms, chat_ms = [], []
            for _ in range(rounds):
                for path, selector, out in (
                    ("/", item_input, app_ms),
                    ("/chat", "#input", chat_ms),
                ):
                    context = await browser.new_context()
                    page = await context.new_page()
                    await page.goto(url + path, wait_until="commit")
                    await page.locator(selector).first.wait_for(state="visible", timeout=30_000)
                    await page.wait_for_function(
                        "s => { const e = document.querySelector(s); return e && !e.disabled; }",
                        arg=selector,
                    )
                    out.append(await page.evaluate("performance.now()"))
                    await context.close()
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(url + "/")
            await page.locator(item_input).first.wait_for(state="visible", timeout=30_000)
            await page.wait_for_timeout(500)  # the event socket is connected
            dom_ms, http_ms = [], []
            for i in range(changes):
                timing = await page.evaluate(_CHANGE_JS, [panel_id, f"bench item {i}"])
                dom_ms.append(timing["dom"])
                http_ms.append(timing["http"])
            await context.close()
        finally:
            await browser.close()
    return {
        "first_render_after_start_ms": round(sandbox_ms, 1),
        "interactive_ms": [round(v, 1) for v in app_ms],
        "interactive_ms_p50": round(statistics.median(app_ms), 1),
        "classic_chat_ms_p50": round(statistics.median(chat_ms), 1),
        "interactive_ratio": round(statistics.median(app_ms) / statistics.median(chat_ms), 2),
        "state_to_dom_ms_p50": round(statistics.median(dom_ms), 1),
        "state_to_dom_ms_p90": round(sorted(dom_ms)[int(len(dom_ms) * 0.9) - 1], 1),
        "tool_call_http_ms_p50": round(statistics.median(http_ms), 1),
        "rounds": rounds,
        "changes": changes,
    }


# In the page: call the tool, and time when the new text shows in the document.
_CHANGE_JS = """async ([panelId, text]) => {
  const seen = new Promise(resolve => {
    const check = () => document.body.innerText.includes(text);
    const obs = new MutationObserver(() => {
      if (check()) { obs.disconnect(); resolve(performance.now()); }
    });
    obs.observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const t0 = performance.now();
  const res = await fetch(`/api/v1/panels/${panelId}/tools/add_item`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  const t1 = performance.now();
  if (!res.ok) throw new Error(`tool call: ${res.status}`);
  const t2 = await seen;
  return { dom: t2 - t0, http: t1 - t0 };
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (BUILT / "index.html").is_file():
        raise SystemExit("GraphStudio is not built: run scripts/build_web.sh first")
    figures: dict[str, Any] = first_load()
    with tempfile.TemporaryDirectory() as home, Gateway(Path(home)) as gw:
        figures |= asyncio.run(browser_figures(gw.url, args.rounds, args.changes))
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
