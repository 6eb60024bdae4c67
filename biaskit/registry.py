"""One registry per plugin kind: add entries, create them by name, list them.

Plugins receive a `Registry` in their registration hook and call `add`. Callers use
`create(name, **params)`; parameters are checked against the factory's signature so
that an unknown or mistyped parameter fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import re
from typing import Any, Callable

from .errors import UsageError


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered factory: its name, the plugin that added it, and a summary."""

    name: str
    factory: Callable[..., Any]
    plugin: str
    summary: str

    def parameters(self) -> dict[str, inspect.Parameter]:
        """Return the keyword parameters that `create` accepts for this entry."""
        signature = inspect.signature(self.factory)
        return {
            name: parameter
            for name, parameter in signature.parameters.items()
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        }


def _coerce(value: Any, parameter: inspect.Parameter) -> Any:
    """Convert a command-line string to the type of the parameter's default.

    Non-string values pass through unchanged, so the Python API keeps full control.
    """
    if not isinstance(value, str):
        return value
    default = parameter.default
    if default is inspect.Parameter.empty or default is None or isinstance(default, str):
        return value
    if isinstance(default, bool):
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(default, (int, float)):
        return type(default)(value)
    if isinstance(default, (tuple, list)):
        element_type = type(default[0]) if default else str
        return type(default)(element_type(item) for item in value.split(",") if item)
    return value


class Registry:
    """Named factories of one kind (datasets, models, probes, ...).

    `current_plugin` is set by the plugin manager while a plugin registers, so every
    entry records which plugin added it.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self.current_plugin = "<api>"
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, factory: Callable[..., Any], *, summary: str | None = None) -> None:
        """Register `factory` under `name`; a name that is taken raises `UsageError`."""
        if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise UsageError(
                f"invalid {self.kind} name {name!r}: use letters, digits, '-', '_' or '.'"
            )
        if name in self._entries:
            existing = self._entries[name]
            raise UsageError(
                f"{self.kind} {name!r} is registered by both plugin {existing.plugin!r} "
                f"and plugin {self.current_plugin!r}; rename one of them"
            )
        if summary is None:
            doc = inspect.getdoc(factory) or ""
            summary = doc.splitlines()[0] if doc else ""
        self._entries[name] = Entry(name, factory, self.current_plugin, summary)

    def remove_plugin(self, plugin: str) -> list[str]:
        """Drop every entry that `plugin` added and return their names."""
        removed = [name for name, entry in self._entries.items() if entry.plugin == plugin]
        for name in removed:
            del self._entries[name]
        return removed

    def get(self, name: str) -> Entry:
        """Return the entry for `name`, or raise `UsageError` listing close matches."""
        try:
            return self._entries[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise UsageError(
            f"unknown {self.kind} {name!r}; {hint}"
            f"available: {', '.join(self.names()) or 'none'} (see 'biaskit list {self.kind}')"
        ) from None

    def create(self, name: str, **params: Any) -> Any:
        """Build the entry `name` with `params`, checked against its signature."""
        entry = self.get(name)
        accepted = entry.parameters()
        accepted_text = ", ".join(accepted) or "none"
        converted = {}
        for key, value in params.items():
            if key not in accepted:
                raise UsageError(
                    f"unknown parameter {key!r} for {self.kind} {name!r}; "
                    f"accepted parameters: {accepted_text}"
                )
            try:
                converted[key] = _coerce(value, accepted[key])
            except (TypeError, ValueError) as error:
                raise UsageError(
                    f"invalid value {value!r} for parameter {key!r} of {self.kind} {name!r}: "
                    f"{error}; accepted parameters: {accepted_text}"
                ) from None
        try:
            return entry.factory(**converted)
        except UsageError:
            raise
        except (TypeError, ValueError) as error:
            raise UsageError(
                f"invalid parameters for {self.kind} {name!r}: {error}; "
                f"accepted parameters: {accepted_text}"
            ) from error

    def names(self, pattern: str = "*") -> list[str]:
        """Return the registered names matching the shell-style `pattern`, naturally sorted.

        A pattern without wildcards matches as a substring, so ``"res"`` finds ``resnet18``.
        """
        if not any(char in pattern for char in "*?["):
            pattern = f"*{pattern}*"
        matched = [name for name in self._entries if fnmatch.fnmatchcase(name, pattern)]
        return sorted(matched, key=_natural_key)

    def entries(self) -> list[Entry]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
