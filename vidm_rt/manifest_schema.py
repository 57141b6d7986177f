"""Frozen dataclasses from and to JSON objects, each field checked against its type hint once.

The manifest's dataclasses (vidm_rt/manifest.py) are its schema: `parse` builds one from a JSON
object and names the first field that is missing or of the wrong type, as `<source>: field
'graphs.motion.inputs.x_t.shape' ...`; `plain` turns one back into the JSON object. A field
named `extra` collects the keys its dataclass does not know, and `plain` writes them back, so a
newer writer's fields survive an older reader's rewrite.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

EXTRA = "extra"
# type -> convert(value, "source: field 'key'"): for field types that are not plain JSON.
Converters = Mapping[type, Callable[[Any, str], Any]]


# How a message names a JSON value's type.
_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
          list: "a list", dict: "an object", type(None): "null"}


class ManifestError(ValueError):
    """An engine or export directory that cannot be used as it is."""


def parse(cls: type, data: Any, source: str, fix: str, converters: Converters | None = None) -> Any:
    """An instance of the dataclass `cls` from the JSON object `data` (see the module docstring);
    ManifestError "<source>: ...; <fix>" at the first problem."""
    return _Parser(source, fix, converters or {}).dataclass(cls, data, "")


def plain(value: Any) -> Any:
    """The JSON value of a parsed value: a dataclass as `plain_fields`, unless it has its own
    `to_dict`."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_fields(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def plain_fields(value: Any) -> dict[str, Any]:
    """The JSON object of a parsed dataclass: None fields left out, `extra` merged back."""
    out = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
           if f.name != EXTRA and getattr(value, f.name) is not None}
    return {**getattr(value, EXTRA, {}), **out}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The field types of `cls` (resolving them is most of a parse's time: once per class)."""
    return typing.get_type_hints(cls)


class _Parser:
    def __init__(self, source: str, fix: str, converters: Converters) -> None:
        self.source, self.fix, self.converters = source, fix, converters

    def fail(self, key: str, problem: str) -> typing.NoReturn:
        raise ManifestError(f"{self.source}: field {key!r} {problem}; {self.fix}")

    def dataclass(self, cls: type, data: Any, key: str) -> Any:
        if not isinstance(data, Mapping):
            if not key:
                raise ManifestError(f"{self.source}: not a JSON object; {self.fix}")
            self.fail(key, "must be an object")
        hints = _hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for f in dataclasses.fields(cls):
            if f.name == EXTRA:
                values[EXTRA] = MappingProxyType({k: v for k, v in data.items() if k not in names})
                continue
            where = f"{key}.{f.name}" if key else f.name
            if f.name in data:
                values[f.name] = self.value(hints[f.name], data[f.name], where)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ManifestError(f"{self.source}: missing field {where!r}; {self.fix}")
        return cls(**values)

    def value(self, hint: Any, value: Any, key: str) -> Any:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is Any:
            return value
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (hint,) = [a for a in args if a is not type(None)]
            return self.value(hint, value, key)
        if hint in self.converters:
            return self.converters[hint](value, f"{self.source}: field {key!r}")
        if dataclasses.is_dataclass(hint):
            return self.dataclass(hint, value, key)
        if origin is Mapping or origin is dict:
            if not isinstance(value, Mapping):
                self.fail(key, "must be an object")
            return MappingProxyType({k: self.value(args[1], v, f"{key}.{k}")
                                     for k, v in value.items()})
        if origin is tuple:
            if not isinstance(value, list | tuple):
                self.fail(key, "must be a list")
            return tuple(self.value(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        return self.scalar(hint, value, key)

    def scalar(self, hint: type, value: Any, key: str) -> Any:
        if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if hint is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if hint in (str, bool) and isinstance(value, hint):
            return value
        self.fail(key, f"must be {_NAMES[hint]}, not {_NAMES.get(type(value), 'that')}")
