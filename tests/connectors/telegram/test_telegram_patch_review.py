"""A patch review in Telegram: summary, diff block, link, Accept / Reject buttons."""

from connectors.telegram.render import ActionTokens, callback_message, render
from nexflow.bus.events import PatchReviewOut
from nexflow.testing.fake_telegram import parse_html


def review(patch_id: str = "ab12", **extra: object) -> PatchReviewOut:
    return PatchReviewOut(
        channel="telegram",
        chat_id="42",
        patch_id=patch_id,
        title="notes: add <milk>",
        diff="--- a/notes\n+++ b/notes\n+milk & eggs",
        summary=("target: panel:notes (from sync:todo)", "state keys changed: text"),
        url="http://127.0.0.1:8080/patches#ab12",
        **extra,  # type: ignore[arg-type]
    )


def test_review_renders_as_valid_html_with_buttons() -> None:
    rendered = render(review(), ActionTokens())
    (chunk,) = rendered.chunks
    visible = parse_html(chunk)  # raises where Telegram would refuse the HTML
    assert visible.splitlines() == [
        "Patch ab12: notes: add <milk>",
        "target: panel:notes (from sync:todo)",
        "state keys changed: text",
        "--- a/notes",
        "+++ b/notes",
        "+milk & eggs",
        "Full diff on the web",
    ]
    assert 'href="http://127.0.0.1:8080/patches#ab12"' in chunk
    assert rendered.markup is not None
    data = [b.callback_data for row in rendered.markup.inline_keyboard for b in row]
    assert data == ["a:ab12", "r:ab12"]
    tokens = ActionTokens()
    assert [callback_message(d or "", tokens) for d in data] == ["/accept ab12", "/reject ab12"]


def test_an_id_too_long_for_callback_data_gets_typed_commands() -> None:
    long_id = "p" * 70
    rendered = render(review(long_id), ActionTokens())
    assert rendered.markup is None
    assert f"/accept {long_id} · /reject {long_id}" in parse_html("".join(rendered.chunks))
