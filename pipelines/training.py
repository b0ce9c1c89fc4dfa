"""Training pipeline: ingest → specialists (ParallelFor over verticals) → distill → attributes →
evaluate → register (gate) → index, inside an exit handler that records every run's final state. With
``train.generalist_share`` > 0 a generalist step comes first, and the specialists and the student start
from it."""
from kfp import dsl

from apparel.config import Config, config_to_json
from components import build
from components.attributes import add_attribute_branches
from components.build_index import build_index
from components.distill import distill
from components.evaluate import evaluate
from components.ingest import ingest
from components.record_run_status import record_run_status
from components.register import register
from components.train_generalist import train_generalist
from components.train_specialist import train_specialist


def training_step(task: dsl.PipelineTask, config: Config, gpu: bool) -> dsl.PipelineTask:
    """Resources, retries and caching of a training step; the cluster reads them, the local runner skips them.
    ``gpu``: the step's own pod trains on one. Ray Train steps get theirs from Ray (a RayJob on a cluster)."""
    task.set_cpu_limit(config.pipeline.specialist_cpu).set_memory_limit(config.pipeline.specialist_memory)
    task.set_retry(config.pipeline.retries)
    if gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    return task
def build_training_pipeline(config: Config):
    settings = config_to_json(config)
    gpu = config.train.use_gpu is True
    ops = {f.__name__: build(f, config) for f in (ingest, train_generalist, train_specialist, distill,
                                                  add_attribute_branches, evaluate, register, build_index,
                                                  record_run_status)}
    @dsl.pipeline(name="apparel-training", description="Specialists, unified model, attributes, gate, index.")
    def training(source: str = "synthetic", adapter: str = "manifest", verticals: list = [],  # noqa: B006
                 epochs: int = 0, distill_epochs: int = 0, config_json: str = settings):
        on_exit = ops["record_run_status"](run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, config_json=config_json)
        on_exit.set_caching_options(False)  # every run's final state is recorded, cached re-runs included
        with dsl.ExitHandler(on_exit, name="pipeline-steps"):
            data = ops["ingest"](source=source, adapter=adapter, verticals=verticals, config_json=config_json)
            start = {}
            if config.train.generalist_share > 0:
                generalist = training_step(ops["train_generalist"](
                    dataset=data.outputs["dataset"], epochs=epochs, config_json=config_json), config, gpu=False)
                start = {"generalist": generalist.outputs["model"]}
            with dsl.ParallelFor(data.outputs["Output"], parallelism=config.pipeline.parallelism) as vertical:
                specialist = training_step(ops["train_specialist"](
                    dataset=data.outputs["dataset"], vertical=vertical, epochs=epochs, config_json=config_json,
                    **start), config, gpu=False)
            unified = training_step(ops["distill"](dataset=data.outputs["dataset"],
                                                   specialists=dsl.Collected(specialist.outputs["model"]),
                                                   epochs=distill_epochs, config_json=config_json, **start),
                                    config, gpu=False)
            branches = training_step(ops["add_attribute_branches"](
                dataset=data.outputs["dataset"], unified=unified.outputs["model"], config_json=config_json),
                config, gpu)
            scores = ops["evaluate"](dataset=data.outputs["dataset"], model=branches.outputs["model"],
                                     specialists=dsl.Collected(specialist.outputs["model"]), config_json=config_json)
            registered = ops["register"](dataset=data.outputs["dataset"], model=branches.outputs["model"],
                                         evaluation=scores.outputs["evaluation"], config_json=config_json)
            registered.set_caching_options(False)  # a registry write is never a cache hit
            ops["build_index"](dataset=data.outputs["dataset"], model=branches.outputs["model"],
                               version=registered.outputs["version"], decision=registered.outputs["decision"],
                               config_json=config_json).set_caching_options(False)  # logs to the registry
    return training
