from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.telegram.format import markdown_to_html, split_html, to_plain
from nexflow.testing.fake_telegram import parse_html, utf16_len


def test_markdown_becomes_telegram_html() -> None:
    html = markdown_to_html(
        "# Plan\n**bold** *it* _it_ ~~gone~~ `a<b>` [docs](https://x.org/?a=1&b=2)\n- item"
    )
    assert html == (
        "<b>Plan</b>\n<b>bold</b> <i>it</i> <i>it</i> <s>gone</s> <code>a&lt;b&gt;</code> "
        '<a href="https://x.org/?a=1&amp;b=2">docs</a>\n• item'
    )


def test_special_characters_are_escaped_and_identifiers_left_alone() -> None:
    html = markdown_to_html("if a < b && c > d: my_var_name = 2 * 3 * 4")
    assert html == "if a &lt; b &amp;&amp; c &gt; d: my_var_name = 2 * 3 * 4"
    assert parse_html(html) == "if a < b && c > d: my_var_name = 2 * 3 * 4"


def test_code_fence_keeps_its_content_verbatim() -> None:
    html = markdown_to_html('text\n```python\nprint("<b>**not bold**</b>")\n```\nafter')
    assert html == (
        'text\n<pre><code class="language-python">print("&lt;b&gt;**not bold**&lt;/b&gt;")'
        "</code></pre>\nafter"
    )


def test_unsafe_link_schemes_stay_text() -> None:
    html = markdown_to_html("[click](javascript:alert(1))")
    assert "<a" not in html


def test_long_reply_is_split_on_line_boundaries() -> None:
    lines = [f"line {i}: " + "x" * 60 for i in range(200)]
    chunks = split_html(markdown_to_html("\n".join(lines)))
    assert len(chunks) > 1
    for chunk in chunks:
        assert utf16_len(parse_html(chunk)) <= 4096
        assert all(re.fullmatch(r"line \d+: x{60}", line) for line in chunk.split("\n"))
    assert "\n".join(chunks) == "\n".join(lines)


def test_split_inside_a_code_block_reopens_it() -> None:
    body = "\n".join(f"row {i}" for i in range(2000))
    chunks = split_html(markdown_to_html(f"```sql\n{body}\n```"))
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.startswith('<pre><code class="language-sql">')
        assert chunk.endswith("</code></pre>")
        parse_html(chunk)


def test_a_line_longer_than_the_limit_is_cut_at_spaces() -> None:
    chunks = split_html(markdown_to_html("**" + "word " * 30 + "end**"), limit=40)
    assert all(utf16_len(parse_html(c)) <= 40 for c in chunks)
    assert all(c.startswith("<b>") and c.endswith("</b>") for c in chunks)
    assert " ".join(to_plain(c).strip() for c in chunks).split() == ["word"] * 30 + ["end"]


_pieces = [*"ab <>&*_`~[]()#->\n\"';", "```", "**", "__", "https://x.y", "&amp;", "😀", "\n```\n"]
markdownish = st.lists(st.sampled_from(_pieces), max_size=200).map("".join)


@settings(max_examples=300, deadline=None)
@given(markdownish, st.sampled_from([8, 50, 4096]))
def test_any_model_output_renders_to_html_telegram_accepts(text: str, limit: int) -> None:
    for chunk in split_html(markdown_to_html(text), limit):
        visible = parse_html(chunk)  # the fake's parser is as strict as Telegram's
        assert visible.strip()
        assert utf16_len(visible) <= limit
