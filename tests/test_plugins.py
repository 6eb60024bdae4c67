"""Tests for the plugin manager and for the shipped plugins' registrations."""

from __future__ import annotations

import importlib.metadata
import types

import pytest
import torch

import biaskit.plugins
from biaskit.errors import UsageError
from biaskit.hookspecs import hookimpl
from biaskit.plugins import Registries, registries


pytestmark = pytest.mark.usefixtures("single_thread")


def make_plugin(name: str, **hooks) -> types.ModuleType:
    """Return a module object whose attributes are the given hook implementations."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def good_plugin() -> types.ModuleType:
    def biaskit_register_models(registry):
        registry.add("good-model", lambda: "model")

    def biaskit_register_attacks(registry):
        registry.add("good-attack", lambda: "attack")

    return make_plugin(
        "good",
        biaskit_register_models=biaskit_register_models,
        biaskit_register_attacks=biaskit_register_attacks,
    )


def raising_plugin() -> types.ModuleType:
    """A plugin that registers a dataset and a bias, then raises in its models hook."""

    def biaskit_register_datasets(registry):
        registry.add("partial-dataset", lambda: "dataset")

    def biaskit_register_biases(registry):
        registry.add("partial-bias", lambda: "bias")

    def biaskit_register_models(registry):
        raise RuntimeError("boom in models")

    return make_plugin(
        "raising",
        biaskit_register_datasets=biaskit_register_datasets,
        biaskit_register_biases=biaskit_register_biases,
        biaskit_register_models=biaskit_register_models,
    )


@pytest.fixture
def fresh_default():
    """Forget the process-wide registries before and after the test."""
    biaskit.plugins.reset()
    yield
    biaskit.plugins.reset()


def load_with_warnings(plugins) -> Registries:
    built = Registries()
    with pytest.warns(RuntimeWarning):
        built.load(plugins)
    return built


def test_load_good_plugin():
    built = Registries()
    built.load([("good", good_plugin())])
    assert built.models.names() == ["good-model"]
    assert built.attacks.names() == ["good-attack"]
    assert built.models.get("good-model").plugin == "good"
    assert built.failures == []


def test_hook_raise_recorded_by_name():
    built = load_with_warnings([("raising", raising_plugin()), ("good", good_plugin())])
    assert len(built.failures) == 1
    failure = built.failures[0]
    assert failure.plugin == "raising"
    assert failure.stage == "biaskit_register_models"
    assert failure.error == "RuntimeError: boom in models"


def test_hook_raise_warns_with_name():
    built = Registries()
    with pytest.warns(RuntimeWarning, match="plugin 'raising' skipped"):
        built.load([("raising", raising_plugin())])


def test_hook_raise_removes_partial_entries():
    built = load_with_warnings([("raising", raising_plugin()), ("good", good_plugin())])
    assert "partial-dataset" not in built.datasets
    assert "partial-bias" not in built.biases
    assert built.manager.get_plugin("raising") is None


def test_hook_raise_keeps_other_plugins():
    built = load_with_warnings([("good", good_plugin()), ("raising", raising_plugin())])
    assert built.models.create("good-model") == "model"
    assert built.attacks.create("good-attack") == "attack"
    assert list(built.contributions()) == ["good"]


def test_hook_raise_resets_current_plugin():
    built = load_with_warnings([("raising", raising_plugin())])
    assert built.models.current_plugin == "<api>"
    assert built.datasets.current_plugin == "<api>"


def test_bad_hook_signature_fails_at_register():
    def biaskit_register_models(reg):
        reg.add("never", lambda: None)

    bad = make_plugin("bad-signature", biaskit_register_models=biaskit_register_models)
    built = load_with_warnings([("bad-signature", bad), ("good", good_plugin())])
    assert [failure.plugin for failure in built.failures] == ["bad-signature"]
    assert built.failures[0].stage == "register"
    assert built.models.names() == ["good-model"]


def test_misspelled_hook_skips_only_that_plugin():
    def biaskit_register_model(registry):
        registry.add("typo-model", lambda: None)

    typo = make_plugin("typo", biaskit_register_model=biaskit_register_model)
    built = load_with_warnings([("good", good_plugin()), ("typo", typo)])
    assert [failure.plugin for failure in built.failures] == ["typo"]
    assert "biaskit_register_model" in built.failures[0].error
    assert built.models.names() == ["good-model"]
    assert built.manager.get_plugin("typo") is None


def test_duplicate_name_fails_second_plugin():
    def biaskit_register_models(registry):
        registry.add("good-model", lambda: "copy")

    copycat = make_plugin("copycat", biaskit_register_models=biaskit_register_models)
    built = load_with_warnings([("good", good_plugin()), ("copycat", copycat)])
    assert [failure.plugin for failure in built.failures] == ["copycat"]
    assert "'good'" in built.failures[0].error
    assert "'copycat'" in built.failures[0].error
    assert built.models.create("good-model") == "model"


def test_duplicate_plugin_name_keeps_first():
    def biaskit_register_models(registry):
        registry.add("second-model", lambda: "second")

    second = make_plugin("second", biaskit_register_models=biaskit_register_models)
    built = Registries()
    built.load([("good", good_plugin())])
    with pytest.warns(RuntimeWarning, match="'good' is already loaded"):
        built.load([("good", second)])
    assert built.failures[0].stage == "register"
    assert built.models.names() == ["good-model"]
    assert built.attacks.names() == ["good-attack"]
    assert built.manager.get_plugin("good") is not None


def test_contributions_group_by_plugin():
    built = Registries()
    built.load([("good", good_plugin())])
    assert built.contributions() == {"good": {"models": ["good-model"], "attacks": ["good-attack"]}}


@pytest.mark.parametrize(("kind", "expected"), [("models", "model"), ("model", "model"), ("bias", "bias")])
def test_kind_accepts_singular_and_plural(kind, expected):
    assert Registries().kind(kind).kind == expected


def test_kind_unknown():
    with pytest.raises(UsageError, match="unknown plugin kind 'widgets'"):
        Registries().kind("widgets")


class FakeEntryPoint:
    def __init__(self, name, plugin=None, error=None):
        self.name = name
        self.plugin = plugin
        self.error = error

    def load(self):
        if self.error is not None:
            raise self.error
        return self.plugin


def test_import_failure_reported_by_name(monkeypatch, fresh_default):
    fakes = [
        FakeEntryPoint("broken-import", error=ImportError("No module named 'missing_dependency'")),
        FakeEntryPoint("good", plugin=good_plugin()),
    ]
    requested = []

    def entry_points(**selection):
        requested.append(selection)
        return fakes

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    with pytest.warns(RuntimeWarning, match="'broken-import' skipped"):
        built = registries()
    assert requested == [{"group": "biaskit"}]
    assert len(built.failures) == 1
    assert built.failures[0].plugin == "broken-import"
    assert built.failures[0].stage == "import"
    assert "missing_dependency" in built.failures[0].error
    assert built.models.names() == ["good-model"]


def test_registries_is_cached(fresh_default):
    assert registries() is registries()


def test_reset_reloads(fresh_default):
    first = registries()
    biaskit.plugins.reset()
    assert registries() is not first


SHIPPED = {
    "datasets": ["fashion-mnist", "mnist"],
    "biases": ["colour", "grayscale", "patch"],
    "models": ["resnet18", "small-cnn"],
    "strategies": ["erm"],
    "recipes": ["control", "lazy"],
    "attacks": ["pgd-torchattacks"],
}


@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_shipped_names(kind):
    names = registries().kind(kind).names()
    for expected in SHIPPED[kind]:
        assert expected in names


@pytest.mark.parametrize("plugin", sorted(SHIPPED))
def test_shipped_plugin_loads(plugin):
    failed = [failure for failure in registries().failures if failure.plugin == plugin]
    assert failed == []
    assert plugin in registries().contributions()


def test_shipped_entry_owned_by_entry_point():
    assert registries().models.get("resnet18").plugin == "models"
    assert registries().recipes.get("lazy").plugin == "recipes"


MODEL_PARAMS = {"resnet18": {"width": 8}, "small-cnn": {"width": 4}}


@pytest.mark.parametrize("name", registries().models.names())
def test_model_builds(name):
    torch.manual_seed(0)
    model = registries().models.create(name, num_classes=10, in_chans=3, **MODEL_PARAMS.get(name, {}))
    model.eval()
    with torch.no_grad():
        output = model(torch.rand(2, 3, 28, 28))
    assert output.shape == (2, 10)
    assert torch.isfinite(output).all()
    layer = model.get_submodule(model.default_layer)
    assert isinstance(layer, torch.nn.Module)


@pytest.mark.parametrize("name", ["resnet18", "small-cnn"])
def test_model_single_channel(name):
    model = registries().models.create(name, num_classes=4, in_chans=1, **MODEL_PARAMS[name])
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 4)


@pytest.mark.parametrize("name", ["resnet18", "small-cnn"])
def test_model_width_zero(name):
    with pytest.raises(UsageError, match="invalid width 0"):
        registries().models.create(name, width="0")


def test_resnet18_stem_for_small_images():
    model = registries().models.create("resnet18", width=8)
    assert model.conv1.kernel_size == (3, 3)
    assert model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model.layer4[0].conv1.out_channels == 64
