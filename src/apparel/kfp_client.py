"""The one place that builds ``kfp.Client``: with ``pipeline.kfp_auth: serviceaccount-token`` it sends the pod's
projected ServiceAccount token, which multi-user Kubeflow Pipelines requires of in-cluster callers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from apparel.config import PipelineConfig

if TYPE_CHECKING:
    import kfp

# Where the chart mounts the projected token (audience pipelines.kubeflow.org): KFP's own default path.
KFP_TOKEN_PATH = Path("/var/run/secrets/kubeflow/pipelines/token")


def kfp_client(config: PipelineConfig, token_path: Path = KFP_TOKEN_PATH) -> kfp.Client:
    """A ``kfp.Client`` for ``config.kfp_host``; the token is read when the client is made (the kubelet rotates
    the file; the callers are short-lived jobs)."""
    import kfp

    if config.kfp_auth == "serviceaccount-token":
        return kfp.Client(host=config.kfp_host, existing_token=token_path.read_text().strip())
    return kfp.Client(host=config.kfp_host)
