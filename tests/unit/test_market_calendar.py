"""The book-ahead calendar: peaks over windows, exact release, list and array forms agree."""

import random

import pytest

from cpn_net.market.calendar import (DENSE_STEPS, LINK, SITE, BookAhead, DenseStepCalendar, StepCalendar,
                                     Transaction)
from cpn_net.market.errors import MarketError


def brute_peak(holds, start, end):
    """The most booked at any moment of [start, end), by checking every breakpoint inside."""
    moments = {start} | {t for s, e, _ in holds for t in (s, e) if start <= t < end}
    return max(sum(a for s, e, a in holds if s <= t < e) for t in moments)


@pytest.mark.parametrize("kind", [StepCalendar, DenseStepCalendar])
def test_peak_matches_brute_force_and_release_restores_exactly(kind):
    rng = random.Random(7)
    for _ in range(50):
        calendar, holds = kind(), []
        for _ in range(40):
            if holds and rng.random() < 0.3:
                s, e, a = holds.pop(rng.randrange(len(holds)))
                calendar.add(s, e, -a)
            else:
                s = rng.uniform(0, 100)
                hold = (s, s + rng.uniform(0.5, 40), rng.randint(1, 9))
                holds.append(hold)
                calendar.add(*hold)
            start = rng.uniform(-10, 120)
            end = start + rng.uniform(0.1, 50)
            assert calendar.peak(start, end) == brute_peak(holds, start, end)
            peak, frm, to = calendar.worst(start, end)
            assert peak == calendar.peak(start, end) and start <= frm < to <= end
            assert calendar.peak(frm, to) == peak
        for s, e, a in holds:
            calendar.add(s, e, -a)
        assert calendar.steps() == ((), ())


def test_list_and_array_forms_agree_step_for_step():
    rng = random.Random(3)
    sparse, dense = StepCalendar(), DenseStepCalendar()
    for _ in range(300):
        s = rng.randint(0, 60)
        e, a = s + rng.randint(1, 30), rng.randint(-2, 5) or 1  # releases only where that much is booked
        if a < 0 and min(sparse.at(t + 0.5) for t in range(s, e)) < -a:
            a = -a
        sparse.add(s, e, a)
        dense.add(s, e, a)
        assert sparse.steps() == dense.steps()
        assert sparse.worst(s - 3, e + 3) == dense.worst(s - 3, e + 3)
    sparse.forget_before(40.5)
    dense.forget_before(40.5)
    assert sparse.steps() == dense.steps()


def test_a_release_beyond_what_is_booked_is_refused_and_changes_nothing():
    calendar = StepCalendar()
    calendar.add(0.0, 10.0, 2)
    before = calendar.steps()
    with pytest.raises(MarketError, match="release of 3 over \\[0, 10\\) exceeds what is booked"):
        calendar.add(0.0, 10.0, -3)
    assert calendar.steps() == before
    with pytest.raises(MarketError, match="window .* is empty"):
        calendar.add(5.0, 5.0, 1)


def test_forget_before_keeps_what_still_matters():
    calendar = StepCalendar()
    calendar.add(0.0, 10.0, 2)
    calendar.add(20.0, 30.0, 1)
    calendar.forget_before(5.0)
    assert calendar.at(5.0) == 2 and calendar.peak(20.0, 30.0) == 1
    calendar.forget_before(15.0)
    assert calendar.steps() == ((20.0, 30.0), (1, 0))


def test_busy_calendars_move_to_arrays_and_back():
    book = BookAhead(sites=1, links=1)
    for k in range(DENSE_STEPS):
        book.add(LINK, 0, float(k), float(k) + 0.5, 1)
    assert isinstance(book.links[0], DenseStepCalendar) and book.peak(LINK, 0, 0.0, 1e6) == 1
    book.forget_before(DENSE_STEPS - 3.0)
    assert isinstance(book.links[0], StepCalendar) and book.peak(LINK, 0, 0.0, 1e6) == 1


def test_transaction_rolls_back_in_reverse():
    book = BookAhead(sites=2, links=2)
    book.add(SITE, 0, 0.0, 100.0, 1)
    before = book.snapshot()
    tx = Transaction(book)
    tx.add(SITE, 0, 10.0, 20.0, 3)
    tx.add(LINK, 1, 0.0, 5.0, 2500)
    tx.add(LINK, 1, 3.0, 9.0, 100)
    assert book.peak(LINK, 1, 0.0, 10.0) == 2600
    tx.rollback()
    assert book.snapshot() == before and tx.applied == []
