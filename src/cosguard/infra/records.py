"""Typed value classes declared like dataclasses, without @dataclass's cost at cold start.

`@dataclass` writes each class's `__init__`, `__repr__`, `__eq__` (and, frozen, `__setattr__`,
`__delattr__`, `__hash__`) as source text and compiles it with `exec`: 0.5 to 4 ms a class on
SCF's hardware, paid at every cold start for every class on a handler's import path. A `Record`
subclass declares its fields the same way (annotations, defaults in field order) and gets the same
behaviour from the generic methods below, written once.

    class ObjectInfo(Record, frozen=True, hidden=("secret",)):
        bucket: str
        size: int = 0
        tags: Dict[str, str] = Factory(dict)     # dataclasses' default_factory

Frozen records refuse assignment (`FrozenInstanceError`, an AttributeError) and are hashable;
`replace(**changes)` and `fields_dict()` stand for `dataclasses.replace` and `dataclasses.asdict`.
"""
from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, FrozenSet, Iterable, Tuple, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
elif TYPE_CHECKING:  # typing_extensions is no runtime dependency on 3.9: type checkers only
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda cls: cls

_MISSING = object()
_T = TypeVar("_T")
_R = TypeVar("_R", bound="Record")


class _Factory:
    """A default built afresh for each instance (a list, a dict, a lock)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]):
        self.make = make


if TYPE_CHECKING:
    def Factory(make: Callable[[], _T]) -> _T:
        """To a type checker, the value `make` builds: `tags: Dict[str, str] = Factory(dict)` checks."""
        ...
else:
    Factory = _Factory


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


@dataclass_transform()
class Record:
    """Fields from the class's annotations (ClassVar excluded), in order, bases' first."""

    _fields: ClassVar[Tuple[str, ...]] = ()
    _defaults: ClassVar[Dict[str, Any]] = {}
    _hidden: ClassVar[FrozenSet[str]] = frozenset()     # left out of repr (secrets)
    _compared: ClassVar[Tuple[str, ...]] = ()           # what eq and hash look at
    _frozen: ClassVar[bool] = False

    def __init_subclass__(cls, frozen: bool = False, hidden: Iterable[str] = (),
                          uncompared: Iterable[str] = (), **kwargs: Any):
        super().__init_subclass__(**kwargs)
        own = [name for name, kind in cls.__dict__.get("__annotations__", {}).items()
               if "ClassVar" not in str(kind)]
        fields = cls._fields + tuple(name for name in own if name not in cls._fields)
        defaults = dict(cls._defaults)
        for name in own:
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
                if isinstance(defaults[name], _Factory):
                    delattr(cls, name)  # the class attribute would be a shared Factory, not a value
        for before, after in zip(fields, fields[1:]):
            if before in defaults and after not in defaults:
                raise TypeError(f"{cls.__name__}: field {after!r} without a default follows {before!r}")
        excluded = frozenset(uncompared)
        cls._fields, cls._defaults = fields, defaults
        cls._hidden = cls._hidden | frozenset(hidden)
        cls._compared = tuple(name for name in fields if name not in excluded)
        cls._frozen = cls._frozen or frozen
        if cls._frozen:
            cls.__setattr__ = Record._refuse_assignment  # type: ignore[assignment]
            cls.__delattr__ = Record._refuse_deletion  # type: ignore[assignment]
            cls.__hash__ = Record._hash  # type: ignore[assignment]
        else:
            cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as dataclasses

    def __init__(self, *args: Any, **kwargs: Any):
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} positional arguments, got {len(args)}")
        assign = object.__setattr__
        for name, value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for {name!r}")
            assign(self, name, value)
        for name in fields[len(args):]:
            value = kwargs.pop(name, _MISSING)
            if value is _MISSING:
                value = self._defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{type(self).__name__}() missing required argument {name!r}")
                if isinstance(value, _Factory):
                    value = value.make()
            assign(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(kwargs)}")

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._compared)

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def _hash(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields if name not in self._hidden)
        return f"{type(self).__qualname__}({shown})"

    def _refuse_assignment(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def _refuse_deletion(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def replace(self: _R, **changes: Any) -> _R:
        """A copy with `changes` (what `dataclasses.replace` does); unknown names are a TypeError."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)

    def fields_dict(self) -> Dict[str, Any]:
        """Fields as a dict, containers and nested records copied (what `dataclasses.asdict` does)."""
        return {name: _plain(getattr(self, name)) for name in self._fields}


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.fields_dict()
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_plain(item) for item in value)
    return value


class StrEnum(str, enum.Enum):
    """`enum.StrEnum` is 3.11+; SCF runs 3.9."""

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value
