"""The chart renders each object once."""

from __future__ import annotations

from collections import Counter

import pytest
from chartlib import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_object_is_rendered_twice(rendered: dict, scenario: str) -> None:
    keys = Counter((m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in rendered[scenario])
    assert not [key for key, count in keys.items() if count > 1], scenario
