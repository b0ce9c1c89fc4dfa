"""Packages that come with an extra of apparel rather than with a base install (`pip install .`)."""

from __future__ import annotations

from types import ModuleType

FAISS_MISSING = "faiss is not installed: install apparel[cpu] or apparel[gpu]"


def import_faiss() -> ModuleType:
    """faiss, or one line naming the extras that install it (its CPU and GPU builds are separate packages, so
    neither can be a base requirement)."""
    try:
        import faiss
    except ModuleNotFoundError as missing:
        if missing.name != "faiss":
            raise
        raise ModuleNotFoundError(FAISS_MISSING, name="faiss") from None
    return faiss
