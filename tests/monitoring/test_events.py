"""Debounce, cooldown per stream and cause, and the event key, without any scoring."""

from apparel.monitoring.events import DriftEvent, EventStore, MonitorState, cause_of


def feed(state: MonitorState, stream: str, alarms: list[bool], debounce: int = 3, cooldown: int = 4,
         fired: str = "embedding") -> list[int]:
    """Indices of the windows at which an event fired; ``fired``: the component each alarming window names."""
    found = []
    for index, alarm in enumerate(alarms):
        window = {"key": f"{stream}/{index}", "fired": [fired] if alarm else []}
        if state.observe("1", stream, window, alarm, debounce, cooldown):
            found.append(index)
    return found


def test_drift_needs_n_consecutive_alarming_windows():
    assert feed(MonitorState(), "overall", [True, True, False, True, True, False, True]) == []
    assert feed(MonitorState(), "overall", [False, True, True, True]) == [3]


def test_cooldown_holds_back_the_same_stream_and_cause_only():
    """Regression (issue 39): one cooldown per model version swallowed a one-vertical shift and then the
    largest shift of all, because an earlier event of another cause had started it."""
    state = MonitorState()
    assert feed(state, "overall", [True] * 3, cooldown=6, fired="brightness") == [2]
    assert feed(state, "tops", [True] * 3, cooldown=6) == [2]  # another vertical: its own event
    assert feed(state, "overall", [True] * 3, cooldown=6, fired="brightness") == []  # 3 of 6 cooldown windows
    # another cause: its own event once it names most of the last 3 windows (the second aspect window)
    assert feed(state, "overall", [True] * 3, cooldown=6, fired="aspect") == [1]
    assert feed(state, "overall", [False], cooldown=6) == []  # the 6th window: brightness's cooldown ends
    assert feed(state, "overall", [True] * 3, cooldown=6, fired="brightness") == [2]


def test_the_cause_groups_the_photo_size_statistics_and_follows_most_windows():
    assert cause_of([{"fired": ["width", "aspect"]}, {"fired": ["aspect"]}, {"fired": ["embedding"]}]) == "size"
    assert cause_of([{"fired": ["embedding"]}, {"fired": ["blur"]}]) == "blur"  # a tie: the latest window's
    assert cause_of([{"fired": ["brightness"]}]) == "brightness"


def test_the_event_returns_its_alarming_windows():
    state = MonitorState()
    windows = None
    for index in range(4):
        windows = state.observe("1", "overall", {"key": index, "fired": ["aspect"]}, index > 0, 3, 4) or windows
    assert [w["key"] for w in windows[0]] == [1, 2, 3] and windows[1] == "size"


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
