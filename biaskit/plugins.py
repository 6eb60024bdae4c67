"""The plugin manager: load entry points, fill one registry per kind, skip broken plugins.

Shipped plugins and third-party plugins load the same way, through the entry-point
group ``biaskit``. A plugin that fails to import, implements an unknown (misspelled)
hook, or whose hook raises is recorded in `Registries.failures` and warned about with
its name. It is removed with everything it had registered, and the others keep working.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import warnings
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import UsageError
from .registry import Registry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT
KINDS = ("datasets", "biases", "models", "strategies", "recipes", "probes", "attacks")
SINGULAR = {
    "datasets": "dataset",
    "biases": "bias",
    "models": "model",
    "strategies": "strategy",
    "recipes": "recipe",
    "probes": "probe",
    "attacks": "attack",
}


@dataclasses.dataclass
class PluginFailure:
    plugin: str
    stage: str  # "import" or the hook that raised
    error: str


class Registries:
    """One `Registry` per kind, filled by the plugins given to `load`."""

    def __init__(self):
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        for kind in KINDS:
            setattr(self, kind, Registry(SINGULAR[kind]))

    def kind(self, kind: str) -> Registry:
        """Return the registry for `kind`, accepting singular or plural names."""
        for plural in KINDS:
            registry = getattr(self, plural)
            if kind in (plural, registry.kind):
                return registry
        raise UsageError(f"unknown plugin kind {kind!r}; choose one of: {', '.join(KINDS)}")

    def all(self) -> dict[str, Registry]:
        return {kind: getattr(self, kind) for kind in KINDS}

    def load(self, plugins: Iterable[tuple[str, Any]]) -> None:
        """Register each `(name, plugin object)` and call its hooks kind by kind."""
        for name, plugin in plugins:
            self._register_one(name, plugin)
        self.manager.check_pending()

    def _register_one(self, name: str, plugin: Any) -> None:
        if self.manager.has_plugin(name):
            # The usual clean-up would remove the plugin already loaded under this name.
            error = UsageError(f"a plugin named {name!r} is already loaded; rename the entry point")
            self._fail(name, "register", error, remove=False)
            return
        try:
            self.manager.register(plugin, name=name)
            # The plugins before this one passed the same check, so an unknown
            # (misspelled) hook found here is this plugin's.
            self.manager.check_pending()
        except Exception as error:  # a plugin's own bug must not stop the others
            self._fail(name, "register", error)
            return
        for kind in KINDS:
            hook = getattr(self.manager.hook, f"biaskit_register_{kind}")
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                registry = getattr(self, kind)
                registry.current_plugin = name
                try:
                    impl.function(registry=registry)
                except Exception as error:  # see above
                    self._fail(name, f"biaskit_register_{kind}", error)
                    return
                finally:
                    registry.current_plugin = "<api>"

    def _fail(self, name: str, stage: str, error: BaseException, *, remove: bool = True) -> None:
        message = f"{type(error).__name__}: {error}"
        self.failures.append(PluginFailure(name, stage, message))
        warnings.warn(
            f"biaskit plugin {name!r} skipped ({stage} failed: {message})",
            RuntimeWarning,
            stacklevel=3,
        )
        log.debug("plugin %s failed", name, exc_info=error)
        if not remove:
            return
        for registry in self.all().values():
            registry.remove_plugin(name)
        if self.manager.get_plugin(name) is not None:
            self.manager.unregister(name=name)

    def contributions(self) -> dict[str, dict[str, list[str]]]:
        """Return, per plugin, the names it registered, grouped by kind."""
        table: dict[str, dict[str, list[str]]] = {}
        for kind, registry in self.all().items():
            for entry in registry.entries():
                table.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
        return table


def entry_point_plugins() -> list[tuple[str, Any]]:
    """Import every entry point of the ``biaskit`` group; failures become stubs."""
    loaded = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded.append((entry_point.name, entry_point.load()))
        except Exception as error:  # an import error in one plugin must not stop the others
            loaded.append((entry_point.name, _ImportFailure(error)))
    return loaded


class _ImportFailure:
    """Stands in for a plugin that failed to import, so it is reported by name."""

    def __init__(self, error: BaseException):
        self.error = error


_DEFAULT: Registries | None = None


def registries() -> Registries:
    """Return the process-wide registries, loading the installed plugins on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        built = Registries()
        plugins = []
        for name, plugin in entry_point_plugins():
            if isinstance(plugin, _ImportFailure):
                built._fail(name, "import", plugin.error)
            else:
                plugins.append((name, plugin))
        built.load(plugins)
        _DEFAULT = built
    return _DEFAULT


def reset() -> None:
    """Forget the loaded registries, so the next `registries()` loads plugins again."""
    global _DEFAULT
    _DEFAULT = None
