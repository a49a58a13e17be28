"""Classes registered by name as they are defined (optimizers, learning-rate schedules,
layers), so that a saved config can name the class that rebuilds it.

A base class keeps a dict `name -> class` and calls `register` from its `__init_subclass__`;
a subclass names itself in its class statement (`class Adam(Optimizer, name="adam")`). A
config is turned back into its class by `lookup`, and an object checks that its class has a
name of its own before it is saved with `own_name`."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["Named", "lookup", "own_name", "register"]


class Named(Protocol):
    """A registered kind of object: its class carries the name it is registered under."""

    name: ClassVar[str]


C = TypeVar("C", bound=type[Named])


def register(registry: MutableMapping[str, C], cls: C, name: str, kind: str) -> None:
    """Enter `cls` into `registry` as `name` and set `cls.name`; called from a base class's
    `__init_subclass__(cls, name="", **kwargs)`. Without a name (a helper base, a user's
    variant) nothing happens. `kind` ("optimizer") words the error for a name taken already:
    two classes cannot both rebuild one saved name."""
    if not name:
        return
    taken = registry.get(name)
    if taken is not None and _path(taken) != _path(cls):  # the same class defined again (a
        # notebook cell run twice) takes its place
        raise ValueError(
            f"the {kind} name {name!r} is taken already (by {_path(taken)}): give "
            f"{cls.__qualname__} another name"
        )
    cls.name = name
    registry[name] = cls


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def lookup(registry: Mapping[str, C], name: Any, kind: str) -> C:
    """The class registered as `name`; else a ValueError naming it and the names there are
    (a file written by a class that is not defined, or not imported, here)."""
    if not isinstance(name, str) or name not in registry:
        raise ValueError(f"unknown {kind} {name!r}: use one of {list(registry)}")
    return registry[name]


def own_name(registry: Mapping[str, type[Named]], cls: type[Named]) -> str:
    """The name `cls` is registered under; a ValueError if it has none of its own (a subclass
    inherits its base's `name` but not its entry, and a config naming the base would rebuild
    the base)."""
    if registry.get(cls.name) is not cls:
        base = cls.__mro__[1].__name__
        raise ValueError(
            f"{cls.__name__} has no name of its own, so it cannot be saved: declare it as "
            f"class {cls.__name__}({base}, name='...')"
        )
    return cls.name
