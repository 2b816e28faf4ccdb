"""Keyword search terms: the words of a query, minus stop words, for an FTS5 ``MATCH``.

Shared by memory search (:mod:`~nexflow.memory.store`) and page-in
(:mod:`~nexflow.memory.paging`); owner tokens keep one user's rows apart in a shared
FTS5 table.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[а-яё]")


def _words(text: str) -> list[str]:
    return text.split()


_STOPWORDS = frozenset(
    _words(
        # English
        "a an and are as at be by did do does for from has have how i in is it me my of on or "
        "our so that the their them they this to was we what when where which who why will "
        "with you your "
        # Russian: pronouns, prepositions, conjunctions, particles and the commonest verbs
        "а без более бы был была были было быть в вам вас весь во вот все всё всего всех вы "
        "где да даже для до его ее её ей ему если есть еще ещё же за здесь и из или им их к "
        "как какая какие какой когда кого кто куда ли либо между меня мне мной мои мой моя "
        "мы на над надо наш наша наше наши не него нее неё нет ни них но ну о об однако он "
        "она они оно от по под после при про раз с сам свой свою себе себя сейчас со так "
        "также такой там тебе тебя то того тоже той том ту тут ты у уже хотя чего чей чем "
        "через что чтобы чье чья эта эти это этого этой этом этот эту я"
    )
)
# Russian inflection: a word matches its other forms through the stem left after one of
# these endings (longest first), searched as an FTS5 prefix ("стем"*). A light stemmer in
# the spirit of Snowball's, enough for notes and questions; the stem keeps >= 3 letters.
_RU_ENDINGS = tuple(
    sorted(
        _words(
            "иями ями ами ией ием иях ях ах ов ев ей ой ом ем ам ям ию ия ие ий ью ья ого его "
            "ому ему ыми ими ая яя ое ее ые ый ую юю их ых ым им ешь ете ет ут ют ат ят ит "
            "ить ать ять еть ил ила ило или ал ала али а я о е ы и у ю ь й"
        ),
        key=len,
        reverse=True,
    )
)
_RU_REFLEXIVE = ("ся", "сь")
_MIN_STEM = 3


def ru_stem(word: str) -> str:
    """``пароля`` → ``парол``: the word without its reflexive suffix and one ending."""
    for suffix in _RU_REFLEXIVE:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM + 1:
            word = word[: -len(suffix)]
            break
    for ending in _RU_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_STEM:
            return word[: -len(ending)]
    return word


def keyword_terms(query: str) -> str | None:
    """The query's words minus stop words, OR-ed for an FTS5 MATCH (None: no words).

    Russian words are searched by their stem as a prefix, so a question's "пароля" finds
    a note's "пароль"; other words as they are."""
    words = [w for w in _WORD.findall(query.lower()) if w not in _STOPWORDS]
    if not words:
        return None
    terms = []
    for word in dict.fromkeys(words):
        if _CYRILLIC.search(word) and len(word) > _MIN_STEM:
            terms.append(f'"{ru_stem(word)}"*')
        else:
            terms.append(f'"{word}"')
    return " OR ".join(dict.fromkeys(terms))


def owner_token(user_id: str) -> str:
    """The user id as one FTS token (ids are hex, but be safe with anything)."""
    return "u" + user_id.encode().hex()
