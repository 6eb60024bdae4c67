"""Tests for `biaskit.registry.Registry`: adding, creating, errors, coercion and listing."""

from __future__ import annotations

import pytest

from biaskit.errors import UsageError
from biaskit.registry import Registry


def widget(width: int = 8, scale: float = 1.0, flag: bool = False, label: str = "w", extra=None):
    """Build a widget description from its parameters."""
    return {"width": width, "scale": scale, "flag": flag, "label": label, "extra": extra}


def gadget():
    return "gadget"


@pytest.fixture
def registry() -> Registry:
    models = Registry("model")
    models.current_plugin = "first-plugin"
    models.add("widget", widget)
    models.add("gadget", gadget, summary="A gadget.")
    models.current_plugin = "<api>"
    return models


def test_add_records_plugin_and_summary(registry):
    entry = registry.get("widget")
    assert entry.plugin == "first-plugin"
    assert entry.summary == "Build a widget description from its parameters."
    assert entry.factory is widget


def test_add_explicit_summary(registry):
    assert registry.get("gadget").summary == "A gadget."


def test_add_missing_docstring_gives_empty_summary():
    models = Registry("model")
    models.add("plain", lambda: None)
    assert models.get("plain").summary == ""


def test_create_calls_factory(registry):
    assert registry.create("gadget") == "gadget"
    assert registry.create("widget", width=3)["width"] == 3


def test_contains_and_len(registry):
    assert "widget" in registry
    assert "missing" not in registry
    assert len(registry) == 2


@pytest.mark.parametrize("name", ["", "-leading", "has space", "a/b", ".dot"])
def test_add_invalid_name(name):
    models = Registry("model")
    with pytest.raises(UsageError, match="invalid model name"):
        models.add(name, gadget)


def test_add_duplicate_names_both_plugins(registry):
    registry.current_plugin = "second-plugin"
    with pytest.raises(UsageError) as caught:
        registry.add("widget", gadget)
    message = str(caught.value)
    assert "'widget'" in message
    assert "'first-plugin'" in message
    assert "'second-plugin'" in message


def test_add_duplicate_keeps_first(registry):
    registry.current_plugin = "second-plugin"
    with pytest.raises(UsageError):
        registry.add("widget", gadget)
    assert registry.get("widget").factory is widget


def test_get_unknown_quotes_name_and_suggests(registry):
    with pytest.raises(UsageError) as caught:
        registry.get("widgit")
    message = str(caught.value)
    assert "unknown model 'widgit'" in message
    assert "did you mean 'widget'" in message
    assert "available: gadget, widget" in message


def test_get_unknown_without_close_match(registry):
    with pytest.raises(UsageError) as caught:
        registry.get("zzzzzz")
    message = str(caught.value)
    assert "'zzzzzz'" in message
    assert "did you mean" not in message
    assert "gadget, widget" in message


def test_get_unknown_in_empty_registry():
    with pytest.raises(UsageError, match="available: none"):
        Registry("probe").get("gradcam")


def test_create_unknown_parameter(registry):
    with pytest.raises(UsageError) as caught:
        registry.create("widget", depth=3)
    message = str(caught.value)
    assert "unknown parameter 'depth'" in message
    assert "model 'widget'" in message
    assert "width, scale, flag, label, extra" in message


def test_create_parameter_for_factory_without_any(registry):
    with pytest.raises(UsageError, match="accepted parameters: none"):
        registry.create("gadget", width=1)


def test_create_invalid_int_string(registry):
    with pytest.raises(UsageError) as caught:
        registry.create("widget", width="abc")
    message = str(caught.value)
    assert "invalid value 'abc'" in message
    assert "parameter 'width'" in message
    assert "accepted parameters: width, scale, flag, label, extra" in message


def test_create_invalid_bool_string(registry):
    with pytest.raises(UsageError, match="expected true or false, got 'maybe'"):
        registry.create("widget", flag="maybe")


def test_create_factory_value_error_becomes_usage_error():
    def strict(size: int = 1):
        if size > 2:
            raise ValueError(f"size {size} is too large")
        return size

    models = Registry("model")
    models.add("strict", strict)
    with pytest.raises(UsageError) as caught:
        models.create("strict", size="5")
    assert "size 5 is too large" in str(caught.value)
    assert "model 'strict'" in str(caught.value)


def test_create_factory_usage_error_passes_unchanged():
    original = UsageError("invalid width 0; use a positive count")

    def failing(width: int = 1):
        raise original

    models = Registry("model")
    models.add("failing", failing)
    with pytest.raises(UsageError) as caught:
        models.create("failing", width=0)
    assert caught.value is original


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("width", "12", 12),
        ("scale", "0.25", 0.25),
        ("scale", "1e-3", 1e-3),
        ("flag", "true", True),
        ("flag", "Yes", True),
        ("flag", "1", True),
        ("flag", "off", False),
        ("flag", "FALSE", False),
        ("flag", "0", False),
        ("label", "12", "12"),
        ("extra", "12", "12"),
    ],
)
def test_create_coerces_strings(registry, key, text, expected):
    value = registry.create("widget", **{key: text})[key]
    assert value == expected
    assert type(value) is type(expected)


def test_create_keeps_non_strings(registry):
    marker = object()
    built = registry.create("widget", width=2.5, extra=marker)
    assert built["width"] == 2.5
    assert built["extra"] is marker


def test_create_coerces_tuple_default():
    def sized(sizes: tuple = (1, 2)):
        return sizes

    models = Registry("model")
    models.add("sized", sized)
    assert models.create("sized", sizes="3,4,5") == (3, 4, 5)


def test_create_keyword_only_parameter():
    def keyword(*, depth: int = 1):
        return depth

    models = Registry("model")
    models.add("keyword", keyword)
    assert models.create("keyword", depth="4") == 4


@pytest.fixture
def numbered() -> Registry:
    models = Registry("model")
    for name in ["m10", "m2", "m1", "resnet50", "resnet18", "small-cnn", "resnet101"]:
        models.add(name, gadget)
    return models


def test_names_natural_sort(numbered):
    assert numbered.names() == ["m1", "m2", "m10", "resnet18", "resnet50", "resnet101", "small-cnn"]


def test_names_wildcard(numbered):
    assert numbered.names("m*") == ["m1", "m2", "m10"]
    assert numbered.names("resnet?8") == ["resnet18"]
    assert numbered.names("m[12]") == ["m1", "m2"]


def test_names_substring(numbered):
    assert numbered.names("net") == ["resnet18", "resnet50", "resnet101"]
    assert numbered.names("cnn") == ["small-cnn"]


def test_names_no_match(numbered):
    assert numbered.names("vit*") == []


def test_entries_follow_natural_order(numbered):
    assert [entry.name for entry in numbered.entries()][:3] == ["m1", "m2", "m10"]


def test_remove_plugin(registry):
    registry.add("other", gadget)
    removed = registry.remove_plugin("first-plugin")
    assert sorted(removed) == ["gadget", "widget"]
    assert registry.names() == ["other"]
