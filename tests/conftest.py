import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FASHION_PRODUCTS = SHARED / "data" / "fashion-products"


@pytest.fixture
def fashion_products() -> Path:
    if not (FASHION_PRODUCTS / "labels.csv").is_file():
        pytest.skip("../shared/data/fashion-products is absent")
    return FASHION_PRODUCTS
