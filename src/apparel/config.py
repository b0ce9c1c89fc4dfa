"""Typed configuration shared by the CLI, the kfp components and the services.

Defaults live here and are documented field by field; YAML files under ``configs/`` hold only
overrides (nanoGPT style). Environment variables override both: ``APPAREL__TRAIN__EPOCHS=3``
sets ``config.train.epochs``. ``APPAREL_CONFIG`` names the YAML file when ``--config`` is absent
(how containers pass it). Loading is pydantic-settings: defaults < YAML file < environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "APPAREL__"
CONFIG_FILE_ENV = "APPAREL_CONFIG"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticConfig(Section):
    products_per_vertical: int = Field(60, description="Products drawn per vertical.")
    views_per_product: int = Field(4, description="Views (pose, scale, crop, light) rendered per product.")
    image_size: int = Field(128, description="Side of the square images in pixels.")
    missing_label_rate: float = Field(0.0, description="Fraction of attribute labels blanked at random.")
    seed: int = Field(0, description="Seed: the same seed gives the same catalog, byte for byte.")
    drop: int = Field(0, ge=0, description="Catalog drop: each drop is a new season of products (drop 0 is the "
                      "default catalog); retraining on a new drop has new data to learn from.")
    new_look: list[str] = Field(default_factory=list, description="Verticals whose look changes in this drop "
                                "(a zigzag pattern on a darker palette, in a darker studio): the drift "
                                "`apparel run loop` finds.")


class DataConfig(Section):
    root: Path = Field(Path("runs/data"), description="Where generated catalogs and ingested datasets go.")
    source: str = Field("synthetic", description="'synthetic' or a path to a catalog.")
    adapter: str = Field("manifest", description="Catalog layout: manifest, csv, fashion-products, ...")
    vertical_map: dict[str, str] = Field(
        default_factory=lambda: {
            "Topwear": "tops",
            "Bottomwear": "bottoms",
            "Dress": "dresses",
            "Shoes": "shoes",
            "Flip Flops": "shoes",
            "Sandal": "shoes",
            "Bags": "bags",
            "Watches": "watches",
        },
        description="Source category (e.g. subCategory) to vertical; unmapped rows are quarantined.",
    )
    label: str = Field("product_id", description="What counts as 'the same item' for triplets and retrieval: "
                       "a column, or columns joined by '+' (e.g. 'articleType+baseColour').")
    split_fractions: tuple[float, float, float] = Field((0.7, 0.1, 0.2), description="train/val/test.")
    split_seed: int = Field(0, description="Salt of the product-id hash that assigns splits.")
    max_image_pixels: int = Field(40_000_000, description="Larger declared images are decompression bombs.")
    io_threads: int = Field(4, description="Threads reading and validating images at ingest.")
    synthetic: SyntheticConfig = SyntheticConfig()


class ModelConfig(Section):
    backbone: Literal["resnet18", "resnet34", "resnet50"] = "resnet18"
    weights: str = Field("none", description="'none' or a local checkpoint path; nothing is downloaded.")
    embedding_dim: int = 64
    image_size: int = Field(48, description="Input side the model sees (images are resized).")


class TrainConfig(Section):
    epochs: int = 5
    steps_per_epoch: int = Field(20, description="P×K batches per epoch (per run, split across workers).")
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_p: int = Field(16, description="Products (or classes) per P×K batch.")
    batch_k: int = Field(4, description="Views per product in a P×K batch.")
    margin: float = 0.2
    miner: Literal["batch_hard", "semi_hard"] = "batch_hard"
    num_workers: int = Field(1, ge=1, description="Ray Train workers per specialist.")
    checkpoints_to_keep: int = Field(1, ge=1, description="Checkpoints kept per Ray training run (the newest; "
                                     "a resumed run needs one).")
    use_gpu: bool | Literal["auto"] = Field("auto", description="Train on GPUs: true, false or auto-detect.")
    cpus_per_worker: int = Field(1, ge=1, description="CPUs Ray Train reserves for each worker.")
    seed: int = 0
    generalist_share: float = Field(0.8, ge=0, lt=1, description="Share of the specialists' triplet steps spent "
                                    "first on one generalist over every vertical, which each specialist and the "
                                    "unified student then start from (the rest: each specialist on its own "
                                    "vertical); 0: specialists and student start from scratch.")
    specialist_lr: float | None = Field(2e-4, gt=0, description="Learning rate of each specialist's fine-tune "
                                        "from the generalist (only with generalist_share > 0; None: train.lr). "
                                        "A full-rate restart undoes much of what the generalist learnt.")
    distill_epochs: int = 6
    distill_flipped_views: bool = Field(False, description="Distil on every training image and its mirror image, "
                                        "each regressing its own teacher embedding (else random flips regress "
                                        "the unflipped image's target).")
    distill_triplet_weight: float = Field(0.0, ge=0, description="Weight of the triplet loss on the catalog's "
                                          "labels added to the student's L2 regression (0: regression alone, "
                                          "as Song et al.); its batches are then P×K over labelled images.")
    attribute_branch_steps: int = Field(2, description="Steps training each new attribute branch alone, on a frozen "
                                        "trunk: few, so that the trunk trains for most of the budget.")
    attribute_finetune_steps: int = Field(5, description="End-to-end steps after each branch is added.")
    attribute_final_steps: int = Field(53, description="Once every branch is in: end-to-end steps per attribute.")
    freeze_base: bool = Field(False, description="Keep the unified trunk fixed while adding branches.")
    attribute_width: int = Field(64, description="Channels of each attribute branch.")
    attribute_attention: bool = Field(False, description="Channel-wise attention inside each branch.")
    attribute_local_maps: int = Field(2, ge=0, description="Heatmaps under which each attribute branch pools the "
                                      "trunk's middle map, beside the last map (0: none).")
    attribute_lr: float = Field(2e-3, description="Learning rate of the attribute branches.")
    attribute_base_lr: float = Field(2e-4, description="Learning rate of the trunk when attributes fine-tune it.")
    attribute_embedding_weight: float = Field(1.0, description="Weight of the L2 pull of the embedding towards "
                                              "the unified model's while attributes fine-tune the trunk.")
    finetune_lr: float = Field(2e-4, description="Learning rate of retraining's fine-tune of the champion.")
    finetune_embedding_weight: float = Field(1.0, description="Weight of the L2 pull towards the champion's "
                                             "embedding during retraining's fine-tune.")
    torch_threads: int = Field(0, description="CPU threads of torch in training (Ray workers, attribute and fine-tune "
                               "steps; 0: torch's default, one per core).")


class RegistryConfig(Section):
    tracking_uri: str = Field("sqlite:///runs/mlflow.db", description="MLflow tracking URI.")
    artifact_root: Path = Field(Path("runs/mlartifacts"), description="Artefact store for the sqlite default.")
    experiment: str = "apparel"
    model_name: str = "apparel-unified"
    recall_tolerance: float = Field(0.02, description="Largest allowed drop of any vertical's Recall@1.")
    accuracy_tolerance: float = Field(0.02, description="Largest allowed drop of any attribute's accuracy.")
    review_mode: bool = Field(False, description="Leave every candidate as challenger until approved.")
    pip_requirements: list[str] = Field(
        default_factory=lambda: ["torch==2.14.1", "torchvision==0.29.1", "numpy", "pandas<3", "pillow", "faiss-cpu",
                                 "scikit-learn", "pydantic>=2", "pydantic-settings>=2", "pyyaml"],
        description="What the registered pyfunc's environment installs (MLflow serving images).")


class PipelineConfig(Section):
    kfp_host: str = Field("", description="KFP API endpoint for `apparel pipeline submit`.")
    kfp_auth: Literal["none", "serviceaccount-token"] = Field(
        "none", description="How calls to kfp_host authenticate: none (standalone KFP) or the pod's projected "
        "ServiceAccount token, audience pipelines.kubeflow.org (multi-user Kubeflow; the chart mounts it).")
    base_image: str = Field("ghcr.io/apparel-mlops/apparel:0.1.0", description="The project's image (`Dockerfile`): "
                            "KFP steps and RayJob pods run in it on a cluster; the local runner uses this Python.")
    images: dict[str, str] = Field(default_factory=dict, description="Per-component image overrides, by name.")
    parallelism: int = Field(2, description="Specialists trained at once by the pipeline's ParallelFor.")
    specialist_cpu: str = Field("2", description="CPU limit of a training step's pod.")
    specialist_memory: str = Field("8G", description="Memory limit of a training step's pod.")
    retries: int = Field(2, description="Retries of training steps (a retried step resumes its checkpoint).")
    pipeline_root: Path = Field(Path("runs/pipeline"), description="Where the local runner keeps artefacts.")
    log_dir: Path = Field(Path("runs/logs"), description="Where a local pipeline run writes its full log (kfp, "
                          "Ray, frameworks); the terminal shows one line per step.")
    retrain_cron: str = Field("0 0 3 * * 1", description="Cron (with seconds) of scheduled retraining.")
    namespace: str = Field("apparel", description="Namespace of the pipeline's pods and RayJobs.")
    service_account: str = Field("apparel-pipeline", description="ServiceAccount runs use (may create and "
                                 "watch rayjobs.ray.io).")
    pvc_name: str = Field("apparel-data", description="Shared PVC mounted at `data.root` by every step and "
                          "RayJob pod on a cluster.")
    ray_head_cpu: str = Field("1", description="CPU of a RayJob's head pod (it runs no training worker).")
    ray_head_memory: str = Field("4Gi", description="Memory of a RayJob's head pod.")
    ray_worker_memory: str = Field("8Gi", description="Memory of each RayJob worker pod (one Ray Train worker; "
                                   "its CPUs and GPU follow train.cpus_per_worker and train.use_gpu).")


class MonitoringConfig(Section):
    method: Literal["mmd", "model", "ratio", "distance"] = Field(
        "mmd", description="Evidently embedding-drift method scoring each window: MMD, domain classifier ROC AUC "
        "('model'), share of drifted components ('ratio') or distance between means ('distance').")
    false_alarm_rate: float = Field(0.01, description="Share of drift-free windows allowed to alarm; thresholds are "
                                    "this quantile of reference-vs-reference draws.")
    calibration_draws: int = Field(200, description="Reference-vs-reference draws per window size and vertical.")
    window_sizes: list[int] = Field(default_factory=lambda: [50, 100, 200], description="Window sizes "
                                    "calibrated (a time window uses the largest calibrated size <= its own).")
    window_size: int = Field(200, description="Requests per count window.")
    window_minutes: float = Field(0.0, description="Time windows of this many "
                                   "minutes instead of count windows (0: off).")
    reference_share: float = Field(0.5, description="Share of the reference (at most `max_reference` images) "
                                   "every window is compared with; each calibration draw re-splits the reference "
                                   "into a part of that size and a disjoint window.")
    max_reference: int = Field(1000, description="Cap on the scoring reference (cost grows with its square for MMD).")
    reference_requests: int = Field(1000, ge=0, description="Live reference: once a champion has served this many "
                                    "requests per vertical on average (this × verticals in all), its first ones "
                                    "become its reference and later windows are compared with them; until then "
                                    "the catalog it indexed is the reference (0: catalog only).")
    pca_components: int = Field(0, description="PCA fitted on the reference "
                                "before scoring (0: off; for wide embeddings).")
    image_stats: bool = Field(True, description="Also test width/height/aspect/brightness/blur with Evidently's "
                              "column drift (calibrated jointly with the embedding score).")
    per_vertical: bool = Field(True, description="Score windows per predicted vertical as well as overall.")
    debounce: int = Field(3, description="Consecutive alarming windows before a drift event is declared.")
    cooldown_windows: int = Field(10, description="A stream's windows after an event during which it starts no "
                                  "new event of the same cause (another vertical or cause starts its own).")
    alarm_reports: bool = Field(True, description="A full Evidently HTML report (EmbeddingsDrift with its t-SNE "
                                "plot, column drift) for the first alarming window of each run of alarms.")
    report_every: int = Field(0, description="Also write a full Evidently "
                              "HTML report every N windows (0: alarming windows only).")
    folder: Path = Field(Path("runs/monitoring"), description="State, events, reports and the Evidently workspace.")
    request_log_dir: Path | None = Field(None, description="Request log to read; empty: serving.request_log_dir, "
                                         "where the service writes it.")
    trigger: Literal["pipeline", "command"] = Field(
        "pipeline", description="What a drift event starts: the retraining pipeline (kfp local runner in local "
        "mode, a KFP run via kfp.Client in cluster mode) or `trigger_command`.")
    trigger_command: list[str] = Field(default_factory=list, description="Command run for an event with "
                                       "`trigger: command` (the event JSON on stdin).")
    ui_port: int = Field(8000, description="Port of `apparel monitor ui` (Evidently's UI).")
    metrics_port: int = Field(9108, description="Port of the Prometheus gauges (`/metrics`), served by `monitor ui`.")
    seed: int = 0


class ServingConfig(Section):
    model_uri: str = Field("", description="Model to serve; '' means models:/<registry.model_name>@champion.")
    host: str = Field("127.0.0.1", description="Interface `apparel serve` binds (0.0.0.0 in a container).")
    http_port: int = Field(3000, ge=1, le=65535,
                           description="HTTP port: endpoints, /livez, /readyz, /metrics, OpenAPI.")
    grpc_port: int = Field(50051, ge=1, le=65535,
                           description="gRPC port (same calls, standard health service, reflection).")
    max_batch_size: int = Field(32, description="Most images one batched forward pass takes.")
    max_latency_ms: int = Field(10, description="Longest a request waits for others to join its batch.")
    http_threads: int = Field(64, description="Concurrent HTTP requests the service works on (decode + wait for "
                              "the batch); more queue.")
    frozen_graph: bool = Field(True, description="Serve the model traced and frozen (TorchScript): faster under "
                               "concurrent requests; outputs equal the eager model's to ~1e-6.")
    max_images_per_request: int = Field(16, description="More images in one request answer 400.")
    max_body_bytes: int = Field(8 * 1024 * 1024, description="Larger request bodies answer 413.")
    max_request_pixels: int = Field(64_000_000, description="Most pixels the images of one request may declare "
                                    "in all, read from their headers before any is decoded (more answer 413); "
                                    "also the most pixels decoded at once across requests. 64 Mpx: one image "
                                    "at data.max_image_pixels (40 Mpx), or 16 catalog photos of 4 Mpx.")
    max_k: int = Field(100, description="Largest k a search or attributes call may ask for.")
    default_k: int = Field(10, description="Similar items returned when k is not given.")
    top_labels: int = Field(3, description="Labels per attribute when k is not given.")
    access_log: bool = Field(False, description="One log line per HTTP request (probes and /metrics never).")
    poll_interval_s: float = Field(30.0, description="How often the champion alias is checked (0: never).")
    request_log_dir: Path = Field(Path("runs/requests"), description="Where sampled requests are logged.")
    request_log_sample_rate: float = Field(0.1, description="Share of served images written to the request log.")


class IndexConfig(Section):
    exact_max_size: int = Field(50_000, description="Catalogs up to this many images are searched exactly "
                                "(flat inner product); larger ones get an approximate index.")
    ivfpq_min_size: int = Field(5_000_000, description="From this many images on, the approximate index is "
                                "IVF-PQ (compressed, for memory) instead of HNSW.")
    hnsw_factory: str = Field("HNSW32", description="faiss.index_factory string of the HNSW index.")
    hnsw_build: dict[str, int] = Field(default_factory=lambda: {"efConstruction": 40},
                                       description="HNSW build parameters.")
    hnsw_search: dict[str, int] = Field(default_factory=lambda: {"efSearch": 64},
                                        description="HNSW search parameters (benchmarks/search.py tunes them).")
    ivfpq_factory: str = Field("IVF16384,PQ32", description="faiss.index_factory string of the IVF-PQ index.")
    ivfpq_search: dict[str, int] = Field(default_factory=lambda: {"nprobe": 64}, description="IVF-PQ search "
                                         "parameters.")
    train_sample: int = Field(500_000, description="Vectors an IVF index's k-means trains on, at most.")
    vertical_k: int = Field(10, description="Neighbours whose majority vertical is an image's predicted vertical.")
    use_gpu: bool | Literal["auto"] = Field("auto", description="faiss on GPU (faiss-gpu builds): true, false or "
                                            "auto-detect. HNSW has no GPU version and stays on CPU.")


class Config(Section):
    mode: Literal["local", "cluster"] = "local"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    registry: RegistryConfig = RegistryConfig()
    pipeline: PipelineConfig = PipelineConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    serving: ServingConfig = ServingConfig()
    index: IndexConfig = IndexConfig()


class ConfigSettings(BaseSettings, Config):
    """:class:`Config` as pydantic-settings reads it: ``APPAREL__SECTION__FIELD`` variables, nested by ``__``,
    over a YAML file. ``load_config`` hands back the plain :class:`Config` it resolves to."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")


class _EnvironSource(EnvSettingsSource):
    """``APPAREL__SECTION__FIELD`` variables from a given mapping (tests pass dicts) rather than os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self.environ.items()}


class ConfigError(ValueError):
    """A bad setting: names the field, the value and where it came from, in one line."""


def _sources(path: Path | str | None, environ: Mapping[str, str]) -> tuple[PydanticBaseSettingsSource, ...]:
    sources: list[PydanticBaseSettingsSource] = [_EnvironSource(ConfigSettings, environ)]
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            sources.append(YamlConfigSettingsSource(ConfigSettings, yaml_file=Path(path)))
        except (TypeError, ValueError, AttributeError):
            raise ConfigError(f"config file {path} must hold a mapping of sections") from None
    return tuple(sources)


def _describe(error: ValidationError, path: Path | str | None, environ: Mapping[str, str]) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    variable = ENV_PREFIX + "__".join(str(part) for part in first["loc"]).upper()
    origin = f"from {variable}" if variable in {k.upper() for k in environ} else f"in {path}" if path else "default"
    message = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"config: {field} = {first.get('input')!r} ({origin}): {message}{more}"


def config_to_json(config: Config) -> str:
    """The whole config as one line of JSON: how it travels into pipeline components (a multi-line
    default would break the header comment kfp writes into compiled YAML)."""
    return json.dumps(config.model_dump(mode="json"), sort_keys=True)


def config_from_json(text: str) -> Config:
    return Config.model_validate_json(text)


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the YAML file's overrides (``path``, else ``$APPAREL_CONFIG``), then ``APPAREL__*``
    environment variables (``environ``, else the process environment)."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get(CONFIG_FILE_ENV) or None
    try:
        settings = ConfigSettings(_build_sources=(_sources(path, environ), {}))
    except ValidationError as error:
        raise ConfigError(_describe(error, path, environ)) from None
    return Config.model_validate(settings.model_dump())
