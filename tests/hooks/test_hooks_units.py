"""The webhook building blocks: the template renderer, the three signature schemes,
delivery storage and the config's validation."""

import hashlib
import hmac
from pathlib import Path

import pytest
from pydantic import ValidationError

from nexflow.config.model import WebhooksConfig
from nexflow.hooks import SignatureError, TemplateError
from nexflow.hooks.render import MAX_VALUE_CHARS, parse_template, render
from nexflow.hooks.signatures import verify
from nexflow.storage.sql_storage import SQLStorage

SECRET = "s3cret-s3cret-s3cret"


def test_render_walks_dicts_and_lists_only() -> None:
    payload = {"a": {"b": "x"}, "l": [{"id": 7}], "t": True, "n": None, "o": {"k": [1, 2]}}
    assert render("{a.b} {l.0.id} {l.3.id} {t} {n} {o} {missing.deep}", payload) == (
        'x 7 ? true ? {"k":[1,2]} ?'
    )
    assert render("{{literal}} {a.b}", payload) == "{literal} x"
    # Names that would reach Python attributes with str.format find nothing in JSON.
    assert render("{a.__class__} {a.b.upper} {l.__len__}", payload) == "? ? ?"
    assert render("{0}", ["first"]) == "first"


def test_render_bounds_and_defangs_values() -> None:
    out = render("{v}", {"v": "y" * 10_000})
    assert len(out) == MAX_VALUE_CHARS and out.endswith("…")
    assert render("{v}", {"v": "a\nb\r\u2028c [x](https://e.vil)"}) == "a b c [x] (https://e.vil)"
    # The owner's template keeps its own lines and links.
    assert render("[log]({u})\n{v}", {"u": "https://ok", "v": 1}) == "[log](https://ok)\n1"


@pytest.mark.parametrize("template", ["{", "}", "a {b", "{a{b}}", "{}", "{a..b}"])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(template)


def _sig(data: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()


def test_github_signature() -> None:
    body = b'{"x":1}'
    ok = verify(
        "github",
        SECRET,
        {"x-hub-signature-256": _sig(body), "x-github-event": "push", "x-github-delivery": "d"},
        body,
        now=0,
        window_s=300,
    )
    assert ok.event == "push" and ok.delivery_keys[0] == "id:d"
    assert ok.delivery_keys[1] == "body:" + hashlib.sha256(body).hexdigest()
    for header in (None, "sha1=abc", _sig(b"other"), "sha256=", "sha256=zz\u00e9"):
        headers = {} if header is None else {"x-hub-signature-256": header}
        with pytest.raises(SignatureError):
            verify("github", SECRET, headers, body, now=0, window_s=300)


def test_gitlab_token() -> None:
    ok = verify("gitlab", SECRET, {"x-gitlab-token": SECRET}, b"{}", now=0, window_s=300)
    assert ok.event is None and len(ok.delivery_keys) == 1
    for token in ("", SECRET + "x", "wrong", "ünïcode"):
        with pytest.raises(SignatureError):
            verify("gitlab", SECRET, {"x-gitlab-token": token}, b"{}", now=0, window_s=300)


def test_hmac_timestamp_window() -> None:
    body = b"{}"

    def headers(ts: str) -> dict[str, str]:
        return {"x-nexflow-timestamp": ts, "x-nexflow-signature": _sig(ts.encode() + b"." + body)}

    ok = verify("hmac", SECRET, headers("1000"), body, now=1100, window_s=300)
    assert ok.delivery_keys[0].startswith("ts:1000.")
    for ts, now in (("1000", 1301), ("1000", 699), ("nan", 1000), ("inf", 1000), ("x", 0)):
        with pytest.raises(SignatureError):
            verify("hmac", SECRET, headers(ts), body, now=now, window_s=300)


async def test_deliveries_are_remembered_and_expire(tmp_path: Path) -> None:
    storage = SQLStorage(tmp_path / "db.sqlite")
    await storage.open()
    try:
        assert await storage.remember_delivery("ci", "d1", 1000.0, 60.0) is True
        assert await storage.remember_delivery("ci", "d1", 1010.0, 60.0) is False
        assert await storage.remember_delivery("other", "d1", 1010.0, 60.0) is True
        # Older than keep_s: forgotten, so it counts as new again.
        assert await storage.remember_delivery("ci", "d1", 1100.0, 60.0) is True
    finally:
        await storage.close()


def test_config_validation() -> None:
    hook = {"secret": SECRET, "scheme": "github", "to": {"channel": "telegram", "chat_id": 42}}
    config = WebhooksConfig.model_validate({"inbound": {"ci": hook}})
    ci = config.inbound["ci"]
    assert ci.to.chat_id == "42" and ci.max_bytes == 256 * 1024 and ci.replay_window_s == 300
    bad = (
        {"Bad Name": hook},
        {"ci": {**hook, "secret": "short"}},
        {"ci": {**hook, "scheme": "svn"}},
        {"ci": {**hook, "template": "{oops"}},
        {"ci": {k: v for k, v in hook.items() if k != "to"}},
        {"ci": {**hook, "extra": 1}},
    )
    for inbound in bad:
        with pytest.raises(ValidationError):
            WebhooksConfig.model_validate({"inbound": inbound})
