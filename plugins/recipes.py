"""The `lazy` and `control` recipes, each with a `paper` and a `quick` preset.

`paper` is the reference ResNet-18 recipe (Adam, cross-entropy, 2 epochs, batch
300, lr 1e-5), meant for a GPU. `quick` trains a narrow ResNet-18 with a larger
learning rate for a few hundred steps, which finishes in minutes on a 2-core CPU and
still shows the effect: the lazy model follows the colour, the control model learns
shape.
"""

from __future__ import annotations

from biaskit.errors import UsageError
from biaskit.hookspecs import hookimpl
from biaskit.recipes import Recipe
from biaskit.training import TrainSettings

PRESETS = ("quick", "paper")


def _settings(preset: str, quick: TrainSettings) -> tuple[dict, TrainSettings]:
    if preset == "paper":
        return {"width": 64}, TrainSettings(epochs=2, batch_size=300, lr=1e-5)
    if preset == "quick":
        return {"width": 16}, quick
    raise UsageError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")


def lazy(preset: str = "quick") -> Recipe:
    """ResNet-18 on stroke-coloured data, 95% aligned: learns the colour shortcut."""
    model_params, settings = _settings(
        preset, TrainSettings(epochs=1, batch_size=128, lr=1e-3, max_steps=120)
    )
    return Recipe(
        name="lazy",
        preset=preset,
        dataset="fashion-mnist",
        bias="colour",
        model="resnet18",
        model_params=model_params,
        settings=settings,
        data_params={"aligned_ratio": 0.95, "test_offset": 5, "val_fraction": 0.2},
        description=lazy.__doc__,
    )


def control(preset: str = "quick") -> Recipe:
    """The same ResNet-18 and recipe on grayscale data: no colour to cheat with."""
    model_params, settings = _settings(
        preset, TrainSettings(epochs=1, batch_size=128, lr=1e-3)
    )
    return Recipe(
        name="control",
        preset=preset,
        dataset="fashion-mnist",
        bias="grayscale",
        model="resnet18",
        model_params=model_params,
        settings=settings,
        data_params={"aligned_ratio": 1.0, "test_offset": 0, "val_fraction": 0.2},
        description=control.__doc__,
    )


@hookimpl
def biaskit_register_recipes(registry):
    registry.add("lazy", lazy)
    registry.add("control", control)
