"""Retraining pipeline (scheduled): ingest the catalog; if its version differs from the champion's
training data, fine-tune the champion on it and put the result through the same gate."""


from kfp import dsl

from apparel.config import Config, config_to_json
from components import build
from components.build_index import build_index
from components.check_new_data import check_new_data
from components.finetune import finetune_champion
from components.ingest import ingest
from components.record_failure import record_failure
from components.register import register
from pipelines.training import training_step


def build_retraining_pipeline(config: Config):
    settings = config_to_json(config)
    gpu = config.train.use_gpu is True
    ops = {f.__name__: build(f, config.pipeline) for f in (ingest, check_new_data, finetune_champion, register,
                                                           build_index, record_failure)}

    @dsl.pipeline(name="apparel-retraining", description="Fine-tune the champion on new data; same gate.")
    def retraining(source: str = "synthetic", adapter: str = "manifest", config_json: str = settings):
        on_exit = ops["record_failure"](config_json=config_json)
        with dsl.ExitHandler(on_exit, name="record-failures"):
            data = ops["ingest"](source=source, adapter=adapter, verticals=[], config_json=config_json)
            check = ops["check_new_data"](dataset=data.outputs["dataset"], config_json=config_json)
            check.set_caching_options(False)  # the champion changes between runs
            with dsl.If(check.output == "retrain", name="new-data"):
                tuned = training_step(ops["finetune_champion"](dataset=data.outputs["dataset"],
                                                               config_json=config_json), config, gpu)
                tuned.set_caching_options(False)
                registered = ops["register"](dataset=data.outputs["dataset"], model=tuned.outputs["model"],
                                             config_json=config_json)
                registered.set_caching_options(False)
                ops["build_index"](dataset=data.outputs["dataset"], model=tuned.outputs["model"],
                                   version=registered.outputs["version"],
                                   decision=registered.outputs["decision"],
                                   config_json=config_json).set_caching_options(False)  # logs to the registry

    return retraining
