"""Debounce, cooldown and the event key, without any scoring."""

from apparel.monitoring.events import DriftEvent, EventStore, MonitorState


def feed(state: MonitorState, stream: str, alarms: list[bool], debounce: int = 3, cooldown: int = 4) -> list[int]:
    """Indices of the windows at which an event fired."""
    fired = []
    for index, alarm in enumerate(alarms):
        if state.observe("1", stream, {"key": f"{stream}/{index}"}, alarm, debounce, cooldown):
            fired.append(index)
    return fired


def test_drift_needs_n_consecutive_alarming_windows():
    assert feed(MonitorState(), "overall", [True, True, False, True, True, False, True]) == []
    assert feed(MonitorState(), "overall", [False, True, True, True]) == [3]


def test_cooldown_counts_overall_windows_and_holds_back_every_stream():
    state = MonitorState()
    assert feed(state, "overall", [True] * 3) == [2]
    assert feed(state, "tops", [True] * 5) == []  # the same shift seen in a vertical: no second event
    assert feed(state, "overall", [True] * 3) == []  # 3 of the 4 cooldown windows
    assert feed(state, "overall", [True]) == [0]  # cooldown over, still drifting: a new event


def test_the_event_returns_its_alarming_windows():
    state = MonitorState()
    windows = None
    for index in range(4):
        windows = state.observe("1", "overall", {"key": index}, index > 0, 3, 4) or windows
    assert [w["key"] for w in windows] == [1, 2, 3]


def test_state_survives_a_restart(tmp_path):
    state = MonitorState()
    feed(state, "overall", [True, True])
    state.save(tmp_path / "state.json")
    assert feed(MonitorState.load(tmp_path / "state.json"), "overall", [True]) == [0]


def test_an_event_key_is_claimed_once(tmp_path):
    store = EventStore(tmp_path)
    event = DriftEvent("v1/overall/3", "1", "overall", [{"key": "v1/overall/3"}], 1.5)
    assert store.claim(event) and not store.claim(event)
    event.run = {"kind": "command", "output": "run-1"}
    store.record(event)
    assert [e.run for e in store.list()] == [{"kind": "command", "output": "run-1"}]
