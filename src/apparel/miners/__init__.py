"""Triplet miners: one per file, all with ``miner(embeddings, labels) -> (a, p, n)``."""

from apparel.miners.base import BaseMiner
from apparel.miners.batch_hard import BatchHardMiner
from apparel.miners.semi_hard import SemiHardMiner


def build_miner(name: str, margin: float) -> BaseMiner:
    if name == "batch_hard":
        return BatchHardMiner()
    if name == "semi_hard":
        return SemiHardMiner(margin)
    raise ValueError(f"unknown miner '{name}' (known: batch_hard, semi_hard)")


__all__ = ["BaseMiner", "BatchHardMiner", "SemiHardMiner", "build_miner"]
