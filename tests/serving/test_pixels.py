"""The server-wide budget of pixels being decoded at once."""

from __future__ import annotations

import threading

from apparel.serving.pixels import PixelBudget


def _hold_in_thread(budget: PixelBudget, pixels: int) -> threading.Event:
    """An event set once a thread got ``pixels`` of the budget (it gives them back at once)."""
    got = threading.Event()

    def hold() -> None:
        with budget.hold(pixels):
            got.set()

    threading.Thread(target=hold, daemon=True).start()
    return got


def test_a_decode_waits_until_its_pixels_fit_the_budget() -> None:
    budget = PixelBudget(100)
    with budget.hold(60):
        assert _hold_in_thread(budget, 40).wait(5)  # 60 + 40 fit
        waiting = _hold_in_thread(budget, 50)
        assert not waiting.wait(0.3)  # 60 + 50 do not
    assert waiting.wait(5)  # the 60 given back: it runs


def test_an_image_larger_than_the_budget_takes_all_of_it_instead_of_waiting_forever() -> None:
    budget = PixelBudget(100)
    assert _hold_in_thread(budget, 10**9).wait(5)
    with budget.hold(10**9):
        assert not _hold_in_thread(budget, 1).wait(0.3)
