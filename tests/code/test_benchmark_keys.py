"""The benchmarks' cache keys: finished seeds are found again only if the key names a file that can exist."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import settings_key  # noqa: E402


def test_short_settings_keep_their_readable_key():
    assert settings_key({"seeds": 5, "rates": (0.0, 0.5), "root": "a/b"}) == "rates=(0.0+ 0.5)-root=a_b-seeds=5"


def test_long_settings_give_a_file_name_that_can_be_created(tmp_path):
    settings = {f"setting_number_{i}": "value" * 4 for i in range(20)}
    key = settings_key(settings)
    assert len(key) <= 200
    assert key != settings_key({**settings, "setting_number_19": "other"})  # the digest sees the whole
    (tmp_path / f"fashion-products-seeds-{key}.trunk").write_text("")
