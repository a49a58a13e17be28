"""The name registry that optimizers and learning-rate schedules (and any kind of object
saved by name) share: registering, refusing a taken name, looking a saved name up."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from xpnet.optim import OPTIMIZERS, SCHEDULES, Adam, Step
from xpnet.registry import lookup, own_name, register


class Base:
    """A kind of object registered by name, as Optimizer and Schedule are."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Base]]] = {}

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register(Base.registry, cls, name, "widget")


class Gear(Base, name="gear"):
    pass


class Helper(Base):  # no name: a base for others, not registered
    pass


def test_a_named_subclass_is_registered_with_its_name():
    assert Base.registry == {"gear": Gear} and Gear.name == "gear"
    assert lookup(Base.registry, "gear", "widget") is Gear
    assert own_name(Base.registry, Gear) == "gear"


def test_a_taken_name_is_refused_naming_the_class_that_holds_it():
    with pytest.raises(ValueError, match=r"widget name 'gear' is taken already \(by .*Gear\)"):

        class Other(Base, name="gear"):
            pass

    assert Base.registry == {"gear": Gear}


@pytest.mark.parametrize("name", ["cog", None, ["gear"]])
def test_an_unknown_name_lists_the_known_ones(name):
    with pytest.raises(ValueError, match=r"unknown widget .*: use one of \['gear'\]"):
        lookup(Base.registry, name, "widget")


def test_a_class_without_a_name_of_its_own_cannot_be_saved():
    class Sub(Gear):  # inherits Gear.name, but "gear" rebuilds a Gear
        pass

    for cls in (Sub, Helper):
        with pytest.raises(ValueError, match=rf"{cls.__name__} has no name of its own"):
            own_name(Base.registry, cls)


def test_optimizers_and_schedules_register_through_it():
    assert lookup(OPTIMIZERS, "adam", "optimizer") is Adam
    assert lookup(SCHEDULES, "step", "learning-rate schedule") is Step
    with pytest.raises(ValueError, match="optimizer name 'adam' is taken already"):

        class MyAdam(Adam, name="adam"):
            pass
