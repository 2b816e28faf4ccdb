"""Keyword terms for FTS5: stop words out, Russian words by stem as a prefix."""

import sqlite3

import pytest

from nexflow.memory.keywords import keyword_terms, ru_stem


@pytest.mark.parametrize(
    ("forms", "stem"),
    [
        (("пароль", "пароля", "паролем", "паролю"), "парол"),
        (("сервер", "серверы", "серверов", "серверами"), "сервер"),
        (("база", "базы", "базе", "базой"), "баз"),
    ],
)
def test_russian_forms_share_a_stem(forms: tuple[str, ...], stem: str) -> None:
    assert {ru_stem(f) for f in forms} == {stem}


def test_short_words_keep_three_letters() -> None:
    assert ru_stem("дом") == "дом"
    assert ru_stem("домом") == "дом"


def test_stop_words_leave_the_query_in_both_languages() -> None:
    assert keyword_terms("как мне это сделать") == '"сдел"*'
    assert keyword_terms("what is it") is None
    assert keyword_terms("where is the prod DB") == '"prod" OR "db"'


def test_a_question_finds_a_note_in_another_form_of_the_word() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text)")
    db.executemany(
        "INSERT INTO t (text) VALUES (?)",
        [("Пароль от продакшен-базы лежит в Vault",), ("Обед в 13:00 по пятницам",)],
    )
    terms = keyword_terms("Где пароля от базы данных?")
    assert terms is not None
    rows = db.execute("SELECT text FROM t WHERE t MATCH ?", (terms,)).fetchall()
    assert rows == [("Пароль от продакшен-базы лежит в Vault",)]
