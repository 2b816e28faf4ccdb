"""skills/_lib/httpkit.py, the bundled skills' JSON-over-HTTP client, in process."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes_devops import Answer, FakeGitHub

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "skills" / "_lib"))
import httpkit
import skillkit

REPO = "/repos/octo-org/demo"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def client(fake: FakeGitHub, base: str | None = None, **kw: Any) -> httpkit.Client:
    auth = {"Authorization": f"Bearer {fake.token}"}
    return httpkit.Client(base or fake.url, service="GitHub", headers=auth, **kw)


def test_json_get_post_and_params(github: FakeGitHub) -> None:
    api = client(github)
    found = api.get(f"{REPO}/issues", {"state": "all", "labels": None, "per_page": 2})
    assert [i["number"] for i in found] == [14, 12]
    assert github.requests[-1].query == {"state": ["all"], "per_page": ["2"]}
    created = api.post(f"{REPO}/issues", {"title": "from httpkit"})
    assert created["title"] == "from httpkit"
    assert github.requests[-1].headers["content-type"] == "application/json"


def test_error_messages_name_status_and_service_text(github: FakeGitHub) -> None:
    bad = httpkit.Client(github.url, service="GitHub", headers={"Authorization": "Bearer no"})
    with pytest.raises(httpkit.HttpError) as e:
        bad.get(f"{REPO}/issues")
    assert e.value.status == 401 and isinstance(e.value, skillkit.Failed)
    assert str(e.value) == (
        f"GitHub answered 401 to GET {REPO}/issues: Bad credentials "
        "(authentication failed: is the token set and still valid?)"
    )
    with pytest.raises(httpkit.HttpError, match=r"422 .*Validation Failed"):
        client(github).post(f"{REPO}/issues", {"body": "no title"})


def test_time_and_size_caps(github: FakeGitHub) -> None:
    with pytest.raises(skillkit.Failed, match="the limit is 200"):
        client(github, max_bytes=200).get(f"{REPO}/issues")
    github.delay = 1.0
    with pytest.raises(TimeoutError, match="GitHub did not answer GET"):
        client(github, timeout=0.3).get(f"{REPO}/issues")


def test_unreachable(github: FakeGitHub) -> None:
    url = github.url
    github.__exit__(None, None, None)
    with pytest.raises(skillkit.Failed, match=re.escape(f"cannot reach GitHub at {url}")):
        client(github, base=url).get("/")
    github.__enter__()  # the fixture stops it again


def test_text_tail_counts_lines_and_drops_the_token_on_redirect(github: FakeGitHub) -> None:
    github.logs[71] = "".join(f"line {n}\n" for n in range(1, 1001))
    text = client(github).text(f"{REPO}/actions/jobs/71/logs", tail_bytes=30)
    assert text.body == "line 998\nline 999\nline 1000\n"
    assert (text.first_line, text.truncated, text.total_bytes) == (998, True, 8893)
    whole = client(github).text(f"{REPO}/actions/jobs/71/logs")
    assert whole.first_line == 1 and whole.truncated is False
    assert github.blob_auth == [None, None]


def test_credentials_in_the_url_become_basic_auth(github: FakeGitHub) -> None:
    base = github.url.replace("http://", "http://bot:pa%3Ass@") + "/"
    api = httpkit.Client(base, service="GitHub")
    assert api.base == github.url  # no credentials left in what messages show
    with pytest.raises(httpkit.HttpError, match="401"):
        api.get(f"{REPO}/issues")
    assert github.requests[-1].headers["authorization"] == "Basic Ym90OnBhOnNz"  # bot:pa:ss


def test_base_url_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_URL", raising=False)
    with pytest.raises(skillkit.Refused, match="SOME_URL is not set"):
        httpkit.base_url("SOME_URL")
    assert httpkit.base_url("SOME_URL", "https://api.example.com/") == "https://api.example.com"
    monkeypatch.setenv("SOME_URL", "file:///etc/passwd")
    with pytest.raises(skillkit.Refused, match="must be an http"):
        httpkit.base_url("SOME_URL")


def test_helpers() -> None:
    assert httpkit.segment("group/sub project") == "group%2Fsub%20project"
    assert httpkit.clip("abcdef", 4) == "abc…" and httpkit.clip(None, 3) == ""
    assert httpkit.split_lines("a\r\nb\rc\n\nd") == ["a", "b\rc", "", "d"]


def test_redirects_only_to_http(github: FakeGitHub) -> None:
    github.route("GET", r"/to-ftp", lambda seen, m: Answer(302, None, {"Location": "ftp://x/y"}))
    with pytest.raises(skillkit.Failed, match="redirected to a non-http URL"):
        client(github).get("/to-ftp")
