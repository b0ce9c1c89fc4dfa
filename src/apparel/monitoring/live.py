"""The live reference: a champion's own first served requests, so windows compare traffic with traffic.

Until a version has served ``monitoring.reference_requests`` × (its verticals) requests, windows are
compared with the catalog it indexed (a catalog photo and a user's photo differ in ways nobody should
be woken for). Then its first requests, in the order served, become its live reference: every stream
that reference calibrates is scored against it from the next window on; a stream it cannot calibrate
(a vertical with little traffic) stays on the catalog reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from apparel.config import Config
from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.reference import Reference, build_reference
from apparel.monitoring.references import local_copy


def live_copy(config: Config, version: str) -> Path:
    return local_copy(config, version).with_name(f"v{version}-live")


def load_live(config: Config, version: str) -> Reference | None:
    folder = live_copy(config, version)
    return Reference.load(folder) if (folder / "reference.json").is_file() else None


def requests_needed(config: Config, catalog: Reference) -> int:
    return config.monitoring.reference_requests * len(set(catalog.verticals.tolist()))


def build_live(config: Config, catalog: Reference, served: pd.DataFrame, log=print) -> Reference | None:
    """The live reference of ``catalog``'s version from its served requests (oldest first), once there
    are enough of them; saved beside the catalog reference. None while there are too few."""
    needed = requests_needed(config, catalog)
    if config.monitoring.reference_requests == 0 or len(served) < needed:
        return None
    first = served.iloc[:needed]
    embeddings = np.stack(first["embedding"].to_numpy()).astype(np.float32)
    stats = first[list(STAT_COLUMNS)].to_numpy(dtype=np.float64)
    until = pd.Timestamp(first["time"].iloc[-1]).timestamp()
    reference = build_reference(catalog.model_version, embeddings, stats, first["vertical"].astype(str).to_numpy(),
                                config.monitoring, log=lambda line: log(f"live reference: {line}"), kind="live",
                                until=until)
    reference.save(live_copy(config, catalog.model_version))
    log(f"live reference: v{catalog.model_version}'s first {needed} served requests; windows after "
        f"{first['time'].iloc[-1]:%Y-%m-%d %H:%M:%S} are compared with them")
    return reference
