"""The one registered artefact: unified embedding + attribute branches as an MLflow pyfunc.

Input: a batch of RGB images, uint8, N×S×S×3 (S = the model's input size), as
:meth:`apparel.inference.InferenceRuntime.prepare` makes them from image files or bytes. Output: a
dict with ``embedding`` (N×D, unit length) and one N×C probability array per attribute; the forward
pass is :func:`apparel.inference.predict_arrays`, the one the service runs.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

import apparel
from apparel.inference import predict_arrays
from apparel.models.attributes import ApparelNet

__all__ = ["ApparelPyfunc", "load_registered", "log_apparel_model", "predict_arrays", "signature_for"]


class ApparelPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.model = ApparelNet.load(Path(context.artifacts["model"]))

    def predict(self, context, model_input: np.ndarray, params=None) -> dict[str, np.ndarray]:
        return predict_arrays(self.model, model_input)


def signature_for(model: ApparelNet) -> ModelSignature:
    size = model.spec.base.image_size
    outputs = [TensorSpec(np.dtype(np.float32), (-1, model.spec.base.embedding_dim), "embedding")]
    outputs += [TensorSpec(np.dtype(np.float32), (-1, len(a.classes)), a.name) for a in model.spec.attributes]
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, size, size, 3))]),
                          outputs=Schema(outputs))


def log_apparel_model(model_dir: Path, registered_name: str, input_example: np.ndarray):
    """Logs the model in the active run and registers a new version; returns MLflow's ModelInfo."""
    model = ApparelNet.load(model_dir)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=ApparelPyfunc(),
        artifacts={"model": str(model_dir)},
        code_paths=[str(Path(apparel.__file__).parent)],
        signature=signature_for(model),
        input_example=input_example,
        registered_model_name=registered_name,
        pip_requirements=["torch==2.14.1", "torchvision==0.29.1", "numpy", "pandas<3", "pillow", "faiss-cpu",
                          "scikit-learn", "pydantic>=2", "pyyaml"],
    )


def load_registered(uri: str) -> ApparelNet:
    """``models:/<name>@champion`` (or any model URI) back to the in-memory network."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().model
