"""biaskit: plant a spurious cue, train a model that cheats on it, probe and attack it.

The Python API mirrors the command line::

    import biaskit
    trained, data = biaskit.load_model("lazy")          # trains on first use
    metrics = trained.metadata["metrics"]
    probe = biaskit.registries().probes.create("gradcam")
"""

from .api import (
    TrainedModel,
    build_data,
    get_recipe,
    load_base,
    load_checkpoint,
    load_model,
    resolve_device,
    train_recipe,
)
from .data import BaseData, Bias, BiasedData, Split, make_biased_data
from .errors import BiaskitError, UsageError
from .hookspecs import hookimpl
from .plugins import registries
from .recipes import Recipe
from .training import Batch, Strategy, TrainSettings, train

__all__ = [
    "BaseData", "Batch", "Bias", "BiasedData", "BiaskitError", "Recipe", "Split", "Strategy",
    "TrainSettings", "TrainedModel", "UsageError", "build_data", "get_recipe", "hookimpl",
    "load_base", "load_checkpoint", "load_model", "make_biased_data", "registries",
    "resolve_device", "train", "train_recipe",
]
