"""The full-text half of the Postgres memory index: words, ``tsvector`` and ``tsquery``.

Items and pages are searched with the terms the SQLite index uses
(:func:`~nexflow.memory.keywords.keyword_terms`: words minus stop words, OR-ed, Russian
stems as prefixes), written for ``to_tsquery``. Texts are split into words in Python
(``\\w+``, as SQLite's ``unicode61`` splits them) before ``to_tsvector``, because
Postgres's parser keeps ``grafana.internal:3000`` as one host token and a query for
``grafana`` would miss it. :data:`TS_CONFIG` is ``english``: Snowball's English stemmer
on English words (SQLite's index uses ``porter``); Cyrillic words stay as they are, for
the stem-prefix match.

Measured on the bilingual set (bench/recall_bench.py --postgres), keyword-only recall@3
/ MRR: ``english`` 0.45 / 0.41, ``simple`` 0.42 / 0.39 (English words lose their stems),
SQLite's BM25 0.48 / 0.38. ``ts_rank`` has no inverse document frequency, which costs two
cross-language queries; hybrid search is the same on both engines (0.80).
"""

from __future__ import annotations

import re

TS_CONFIG = "english"
# ts_rank's length normalisation: 0 (none). On the bilingual set, 1 (log length) and 2
# (length) lose a Russian query (recall@3 ru 0.58 -> 0.54).
TS_NORMALIZATION = 0
_WORD = re.compile(r"\w+")
_TERM = re.compile(r'"([^"]+)"(\*?)')


def words(text: str) -> str:
    """The text as its words, lowercased and space-separated, for ``to_tsvector``."""
    return " ".join(_WORD.findall(text.lower()))


def ts_query(terms: str | None) -> str | None:
    """:func:`~nexflow.memory.keywords.keyword_terms` (``"word" OR "стем"*``, FTS5's
    syntax) as ``to_tsquery`` text: ``'word' | 'стем':*``."""
    if terms is None:
        return None
    parts = []
    for term, prefix in _TERM.findall(terms):
        # keyword_terms quotes \w+ words, so a term has no quote; the ts parser splits
        # "foo_bar" into a phrase, as FTS5 does.
        parts.append(f"'{term}'" + (":*" if prefix else ""))
    return " | ".join(parts) or None
