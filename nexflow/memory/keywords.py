"""Keyword search terms: the words of a query, minus stop words, for an FTS5 ``MATCH``.

Shared by memory search (:mod:`~nexflow.memory.store`) and page-in
(:mod:`~nexflow.memory.paging`); owner tokens keep one user's rows apart in a shared
FTS5 table.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def keyword_terms(query: str) -> str | None:
    """The query's words minus stop words, OR-ed for an FTS5 MATCH (None: no words)."""
    words = [w for w in _WORD.findall(query.lower()) if w not in _STOPWORDS]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def owner_token(user_id: str) -> str:
    """The user id as one FTS token (ids are hex, but be safe with anything)."""
    return "u" + user_id.encode().hex()
