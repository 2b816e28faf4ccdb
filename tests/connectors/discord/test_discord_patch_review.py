"""A patch review in Discord: an embed with the summary and diff, Accept / Reject buttons."""

from connectors.discord.render import parse_custom_id, patch_review
from nexflow.bus.events import PatchReviewOut


def review(diff: str = "--- a/x\n+++ b/x\n-old\n+new") -> PatchReviewOut:
    return PatchReviewOut(
        channel="discord",
        chat_id="1",
        patch_id="ab12",
        title="notes: add milk",
        diff=diff,
        summary=("target: panel:notes (from sync:todo)",),
        url="http://127.0.0.1:8080/patches#ab12",
    )


def test_embed_and_buttons_map_to_accept_and_reject() -> None:
    rendered = patch_review(review())
    assert rendered.embed is not None and rendered.view is not None
    description = rendered.embed.description or ""
    assert description.startswith("target: panel:notes (from sync:todo)\n```diff\n--- a/x")
    assert [f.value for f in rendered.embed.fields] == ["http://127.0.0.1:8080/patches#ab12"]
    ids = [getattr(item, "custom_id", "") for item in rendered.view.children]
    assert ids == ["nxf:accept:ab12", "nxf:reject:ab12"]
    assert [parse_custom_id(i) for i in ids] == ["/accept ab12", "/reject ab12"]
    assert rendered.files == []


def test_a_diff_too_long_for_the_embed_goes_along_as_a_file() -> None:
    rendered = patch_review(review("+x\n" * 3000))
    assert rendered.embed is not None and len(rendered.embed.description or "") <= 4096
    assert [f.filename for f in rendered.files] == ["patch-ab12.diff"]
