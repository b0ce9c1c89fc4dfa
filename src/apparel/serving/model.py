"""A served model: one registered version, its inference runtime, its catalog index and its batcher,
loaded together and swapped together."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apparel.config import Config
from apparel.inference import InferenceRuntime
from apparel.serving.batcher import Batcher

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


class ModelUnavailable(RuntimeError):
    """The configured model (or its index) cannot be served; the message is one line."""


@dataclass
class ServedModel:
    name: str
    version: str
    runtime: InferenceRuntime
    index: object  # apparel.index.CatalogIndex
    batcher: Batcher

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def model_uri(config: Config) -> str:
    return config.serving.model_uri or f"models:/{config.registry.model_name}@champion"


def resolve(config: Config, uri: str | None = None) -> tuple[str, str]:
    """(model name, version) that ``uri`` points at now: an alias is looked up, a version is taken as is."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from apparel.registry.tracking import configure

    uri = uri or model_uri(config)
    if match := _VERSION_URI.match(uri):
        return match["name"], match["version"]
    match = _ALIAS_URI.match(uri)
    if match is None:
        raise ModelUnavailable(f"cannot serve '{uri}': use models:/<name>@<alias> or models:/<name>/<version>")
    configure(config.registry)
    try:
        version = MlflowClient().get_model_version_by_alias(match["name"], match["alias"]).version
    except MlflowException as error:
        raise ModelUnavailable(f"no version of '{match['name']}' holds alias '{match['alias']}'") from error
    return match["name"], str(version)


def load_served_model(config: Config, name: str, version: str) -> ServedModel:
    """Loads the version's network and its catalog index; refuses an index built by another version or
    of another dimension (:class:`ModelUnavailable`, one line)."""
    from apparel.index import IndexMismatch, fetch_catalog_index
    from apparel.registry.pyfunc import load_registered
    from apparel.registry.tracking import configure

    configure(config.registry)
    try:
        runtime = InferenceRuntime(load_registered(f"models:/{name}/{version}"), config.data.max_image_pixels,
                                   frozen=config.serving.frozen_graph)
    except Exception as error:
        raise ModelUnavailable(f"cannot load models:/{name}/{version}: {str(error).splitlines()[0]}") from error
    try:
        index = fetch_catalog_index(config, version)
    except FileNotFoundError as error:
        raise ModelUnavailable(f"models:/{name}/{version} has no catalog index: `apparel index {version}` builds it "
                               "(and its drift reference)") from error
    except IndexMismatch as error:
        raise ModelUnavailable(f"models:/{name}/{version}: {error}") from error
    meta = index.meta
    if str(meta.model_version) != version or meta.model_name != name:
        raise ModelUnavailable(f"index of {meta.model_name} v{meta.model_version} does not belong to "
                               f"{name} v{version}")
    if meta.embedding_dim != runtime.embedding_dim:
        raise ModelUnavailable(f"index dimension {meta.embedding_dim} != model's embedding dimension "
                               f"{runtime.embedding_dim}")
    batcher = Batcher(runtime.forward, config.serving.max_batch_size, config.serving.max_latency_ms,
                      name=f"batcher-v{version}")
    return ServedModel(name, version, runtime, index, batcher)
