"""Hook specifications that a biaskit plugin implements.

A plugin is a module (or object) exposed under the entry-point group ``biaskit``.
Each hook receives the registry of one kind and calls ``registry.add(name, factory)``.
Hooks are called once, when the registries are first built; a plugin may implement
any subset of them.
"""

import pluggy

PROJECT = "biaskit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def biaskit_register_datasets(registry):
    """Add base datasets: factories returning a `biaskit.data.BaseData`.

    Factories take keyword parameters only; `data_dir` and `download` are passed
    when the caller gives them.
    """


@hookspec
def biaskit_register_biases(registry):
    """Add biases: factories returning a `biaskit.data.Bias` that renders a cue."""


@hookspec
def biaskit_register_models(registry):
    """Add models: factories taking `num_classes` and `in_chans`, returning an `nn.Module`.

    The module should set `default_layer` to the dotted name that probes use when
    the user names no layer.
    """


@hookspec
def biaskit_register_strategies(registry):
    """Add training strategies: factories returning a `biaskit.training.Strategy`."""


@hookspec
def biaskit_register_recipes(registry):
    """Add recipes: factories taking `preset` and returning a `biaskit.recipes.Recipe`.

    A factory that also takes `dataset` receives the base dataset the user chose, so
    it may adapt its settings to it. For other factories the recipe's dataset is replaced.
    """


@hookspec
def biaskit_register_probes(registry):
    """Add probes: factories returning an object with `run(context) -> dict`."""


@hookspec
def biaskit_register_attacks(registry):
    """Add attacks: factories returning an object with `run(context) -> dict`."""
