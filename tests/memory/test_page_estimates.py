"""The pager's memory between turns: per-session token estimates and known-clean keys."""

from nexflow.memory.known_clean import KnownClean
from nexflow.memory.page_estimates import SessionEstimates
from nexflow.memory.transcript import message_tokens
from nexflow.storage.base import MessageRecord


def msgs(*ids: int) -> list[MessageRecord]:
    return [MessageRecord(i, "s", "user", "x" * 40, float(i)) for i in ids]


def test_an_estimate_grows_by_the_new_messages_only() -> None:
    known = SessionEstimates(max_load=100)
    first = msgs(1, 2, 3)
    tokens = sum(message_tokens(m) for m in first)
    known.remember("s", 0, False, first, tokens)
    estimate = known.get("s")
    assert estimate is not None and (estimate.tokens, estimate.last_id) == (tokens, 3)
    assert estimate.window is first  # handed over, not copied

    assert known.catch_up("s", 3, msgs(4)) is estimate
    assert estimate.tokens == tokens + message_tokens(msgs(4)[0]) and estimate.last_id == 4
    assert [m.id for m in estimate.window] == [1, 2, 3, 4]
    assert known.catch_up("s", 4, []) is estimate and estimate.last_id == 4
    assert known.catch_up("other", 0, msgs(1)) is None  # not known
    assert known.forget("s") is estimate and known.get("s") is None


def test_a_stale_catch_up_or_a_window_at_the_read_limit_is_forgotten() -> None:
    known = SessionEstimates(max_load=4)
    known.remember("s", 0, False, msgs(1, 2), 20)
    assert known.catch_up("s", 1, msgs(2)) is None  # read from an old last_id
    assert known.get("s") is None
    known.remember("s", 0, False, msgs(1, 2), 20)
    assert known.catch_up("s", 2, msgs(3, 4)) is None  # 4 = max_load: a read would stop here
    assert known.get("s") is None


def test_a_cut_short_read_is_not_remembered_and_the_lru_is_bounded() -> None:
    known = SessionEstimates(max_load=3, capacity=2)
    known.remember("s", 0, False, msgs(1, 2, 3), 30)  # hit max_load: the sum would be low
    assert known.get("s") is None
    known.remember("a", 5, True, [], 0)
    a = known.get("a")
    assert a is not None and (a.cut, a.pages, a.last_id) == (5, True, 5)
    known.remember("b", 0, False, msgs(1), 10)
    assert known.catch_up("a", 5, msgs(6)) is a  # "a" is now the most recent
    known.remember("c", 0, False, msgs(1), 10)
    assert len(known) == 2 and known.get("b") is None and known.get("a") is not None


def test_known_clean_trusts_only_answers_from_the_same_epoch() -> None:
    clean = KnownClean(capacity=2)
    since = clean.epoch
    clean.clean("u1", since)
    assert "u1" in clean
    since = clean.epoch
    clean.dirty("u2")  # something went pending while u1 was being asked about
    clean.dirty("u1")
    clean.clean("u1", since)
    assert "u1" not in clean
    clean.clean("u1", clean.epoch)
    clean.clean("u2", clean.epoch)
    clean.clean("u3", clean.epoch)  # past capacity: forget all, keep the newest
    assert "u3" in clean and "u1" not in clean and "u2" not in clean
