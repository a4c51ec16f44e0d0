"""The MLflow "models from code" entry of the textrnn pyfunc (see :mod:`textrnn.registry`).

MLflow copies this file into every logged model and runs it when the model is loaded;
``model_config["task"]`` then tells :class:`~textrnn.registry.TextrnnModel` what it wraps.
"""

from mlflow.models import set_model

from textrnn.registry import TextrnnModel

set_model(TextrnnModel())
