"""JSON wire format of the OMS REST shape (docs/oms.md): the api dataclasses <-> plain JSON, via pydantic."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


@cache
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def to_json(obj: Any, tp: Any) -> Any:
    """A dataclass (or list/None of them) as JSON-ready data: datetimes ISO 8601 with offset, dates ISO."""
    return _adapter(tp).dump_python(obj, mode="json")


def from_json(data: Any, tp: type[T] | Any) -> T:
    """Validate JSON data into the api dataclass ``tp`` (raises pydantic.ValidationError on a bad shape)."""
    return _adapter(tp).validate_python(data)
