"""The JSON form of the model service's contracts (app/modelsvc), shared by app/ml/service/contracts.py and
app/ml/service/explain_contracts.py. Plain Python and numpy, no torch.

Generic over the dataclass fields, so a field added to a contract travels without touching this code: values become
JSON (tuples as lists, numpy scalars as numbers) and numpy arrays become {"__ndarray__": {"dtype", "shape", "data":
base64 of the raw C-order bytes}}. Decoding reads the field types back (lists to tuples), refuses arrays it does not
expect (dtype not in ARRAY_DTYPES, a shape whose size does not match the bytes, more than MAX_ARRAY_BYTES; there is
no pickle anywhere) and ignores fields it does not know, so a newer model service can talk to an older web server.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

ARRAY_DTYPES = frozenset({"uint8", "float32", "float64", "int64"})
MAX_ARRAY_BYTES = 16 * 1024 * 1024
MAX_ARRAY_DIMS = 4
_Contract = typing.TypeVar("_Contract")


class WireError(ValueError):
    """A message that does not decode into the contract it claims to be."""


def encode_value(value: Any) -> Any:
    """Any contract value as JSON-ready data: tuples as lists, mappings as dicts, numpy arrays as ``__ndarray__``."""
    if isinstance(value, np.ndarray):
        array = value if value.flags.c_contiguous else value.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        if array.dtype.name not in ARRAY_DTYPES:
            raise WireError(f"cannot send a {array.dtype.name} array; allowed: {sorted(ARRAY_DTYPES)}")
        return {
            "__ndarray__": {
                "dtype": array.dtype.name,
                "shape": list(array.shape),
                "data": base64.b64encode(array.tobytes()).decode("ascii"),
            }
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [encode_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode_value(item) for key, item in value.items()}
    return value


def decode_array(spec: Any) -> np.ndarray:
    if not isinstance(spec, Mapping):
        raise WireError("an array must be an object with dtype, shape and data")
    dtype, shape, data = spec.get("dtype"), spec.get("shape"), spec.get("data")
    if dtype not in ARRAY_DTYPES:
        raise WireError(f"array dtype {dtype!r} is not one of {sorted(ARRAY_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_DIMS
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in shape)
    ):
        raise WireError(f"array shape {shape!r} must be a list of at most {MAX_ARRAY_DIMS} non-negative ints")
    if not isinstance(data, str) or len(data) > (MAX_ARRAY_BYTES * 4) // 3 + 4:
        raise WireError(f"array data must be base64 text of at most {MAX_ARRAY_BYTES} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WireError(f"array data is not valid base64: {error}") from None
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise WireError(f"array of shape {shape} and dtype {dtype} needs {expected} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _freeze(value: Any) -> Any:
    """Lists back to tuples (contracts are frozen and hashable: ImageJob.params is part of the batch key)."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _decode(value: Any, hint: Any) -> Any:
    if isinstance(value, Mapping) and "__ndarray__" in value:
        return decode_array(value["__ndarray__"])
    origin = typing.get_origin(hint)
    if hint is np.ndarray:
        raise WireError(f"expected an array, got {type(value).__name__}")
    if origin is tuple:
        if not isinstance(value, list):
            raise WireError(f"expected a list, got {type(value).__name__}")
        return _freeze(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_wire(instance: Any) -> dict[str, Any]:
    return {item.name: encode_value(getattr(instance, item.name)) for item in dataclasses.fields(instance)}


def from_wire(cls: type[_Contract], data: Any) -> _Contract:
    if not isinstance(data, Mapping):
        raise WireError(f"a {cls.__name__} must be a JSON object, got {type(data).__name__}")
    hints = _field_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.name in data:
            values[item.name] = _decode(data[item.name], hints[item.name])
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise WireError(f"a {cls.__name__} needs the field {item.name!r}")
    try:
        return cls(**values)
    except TypeError as error:
        raise WireError(f"not a valid {cls.__name__}: {error}") from None
