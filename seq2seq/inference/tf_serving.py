"""TensorFlow Serving's REST API, as JSON: model status, metadata, and predict requests.

Requests are checked against a signature's inputs (names, dtypes, ranks) and turned into plain
Python values; answers are laid out as TensorFlow Serving lays them out, so its clients work
unchanged. Row format: `{"instances": [...]}` -> `{"predictions": [...]}`; columnar format:
`{"inputs": {...}}` -> `{"outputs": {...}}` (a bare value when there is one input or output).
Strings are UTF-8, or `{"b64": ...}` for bytes. No TensorFlow here: dtypes come as names.
"""

import base64
import binascii
import dataclasses
from pathlib import Path

import numpy as np

MODEL_VERSION = "1"  # an export folder is one version

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_FLOATS = {"float32", "float64", "half", "bfloat16"}


class BadRequest(ValueError):
    """A request the server refuses; `status` is its HTTP status code."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One input of a signature: its dtype name (`tf.DType.name`) and rank (None: unknown)."""

    dtype: str
    rank: int | None

    @property
    def batched(self):
        return self.rank is None or self.rank >= 1


@dataclasses.dataclass
class Predict:
    """A predict request, checked: the inputs with a batch dimension as columns of equal
    length, the others (scalars) apart; `rows` says which format the answer takes."""

    signature: str
    columns: dict
    scalars: dict
    rows: bool

    @property
    def size(self):
        return len(next(iter(self.columns.values()), []))


def model_status():
    return {
        "model_version_status": [
            {
                "version": MODEL_VERSION,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def model_metadata(export_dir, name):
    """GetModelMetadata's answer: the SavedModel's signature defs, as TensorFlow Serving
    prints them (the protocol buffers in JSON, proto field names)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    definitions = {
        key: json_format.MessageToDict(value, preserving_proto_field_name=True)
        for key, value in saved.meta_graphs[0].signature_def.items()
        if not key.startswith("__")  # the SavedModel's init op, which TensorFlow Serving hides
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": MODEL_VERSION},
        "metadata": {"signature_def": {"signature_def": definitions}},
    }


def parse_predict(body, signatures):
    """A checked `Predict` from a decoded JSON body.

    Args:
        body: the request's JSON value.
        signatures: signature name -> {input name: `InputSpec`}.

    Raises:
        BadRequest: naming the field at fault.
    """
    if not isinstance(body, dict):
        raise BadRequest(f"the request must be a JSON object, got {describe(body)}")
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r} (fields: signature_name, instances, inputs)"
        )
    name = body.get("signature_name", "serving_default")
    if not isinstance(name, str) or name not in signatures:
        raise BadRequest(
            f"signature_name {name!r}: the model has no such signature ({_names(signatures)})"
        )
    specs = signatures[name]
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest('give exactly one of "instances" (row format) or "inputs" (columnar)')
    if "instances" in body:
        return Predict(name, _rows(body["instances"], specs, name), {}, rows=True)
    columns, scalars = _columns(body["inputs"], specs)
    return Predict(name, columns, scalars, rows=False)


def _rows(instances, specs, signature):
    if not isinstance(instances, list):
        raise BadRequest(f"instances: expected a list, got {describe(instances)}")
    scalars = sorted(key for key, spec in specs.items() if not spec.batched)
    if scalars:
        raise BadRequest(
            f"signature {signature!r} has scalar inputs ({', '.join(scalars)}), which the row "
            'format cannot carry: send them in the columnar format, {"inputs": {...}}'
        )
    single = next(iter(specs)) if len(specs) == 1 else None
    columns = {key: [] for key in specs}
    for i, instance in enumerate(instances):
        if single and not _named(instance):
            instance = {single: instance}
        _check_names(instance, specs, f"instances[{i}]")
        for key, spec in specs.items():
            rank = None if spec.rank is None else spec.rank - 1
            columns[key].append(_value(instance[key], spec.dtype, rank, f"instances[{i}][{key!r}]"))
    return columns


def _columns(inputs, specs):
    if len(specs) == 1 and not _named(inputs):
        inputs = {next(iter(specs)): inputs}
    _check_names(inputs, specs, "inputs")
    columns, scalars = {}, {}
    for key, spec in specs.items():
        value = _value(inputs[key], spec.dtype, spec.rank, f"inputs[{key!r}]")
        (columns if spec.batched else scalars)[key] = value
    sizes = {key: len(value) for key, value in columns.items()}
    if len(set(sizes.values())) > 1:
        raise BadRequest(f"inputs: the batched inputs differ in length: {sizes}")
    return columns, scalars


def _named(value):
    """An object of named inputs, not a value (TensorFlow Serving accepts both for a signature
    of one input); {"b64": ...} is a value."""
    return isinstance(value, dict) and set(value) != {"b64"}


def _check_names(given, specs, where):
    if not isinstance(given, dict):
        raise BadRequest(f"{where}: expected an object with the inputs {_names(specs)}")
    unknown, missing = sorted(set(given) - set(specs)), sorted(set(specs) - set(given))
    if unknown:
        raise BadRequest(f"{where}: unknown input {unknown[0]!r} (inputs: {_names(specs)})")
    if missing:
        raise BadRequest(f"{where}: missing input {missing[0]!r}")


def _value(value, dtype, rank, where):
    """`value` checked as a tensor of `dtype` and `rank` (None: any), as Python values."""
    if (rank is None and isinstance(value, list)) or rank:
        if not isinstance(value, list):
            raise BadRequest(f"{where}: expected a list (rank {rank}), got {describe(value)}")
        inner = None if rank is None else rank - 1
        return [_value(item, dtype, inner, f"{where}[{i}]") for i, item in enumerate(value)]
    return _scalar(value, dtype, where)


def _scalar(value, dtype, where):
    if dtype == "string":
        return check_string(value, where)
    if dtype == "bool":
        if isinstance(value, bool):
            return value
    elif isinstance(value, bool):
        pass
    elif dtype in _INT_RANGES and isinstance(value, int):
        low, high = _INT_RANGES[dtype]
        if low <= value <= high:
            return value
        raise BadRequest(f"{where}: {value} is out of range for {dtype}")
    elif dtype in _FLOATS and isinstance(value, int | float):
        return float(value)
    raise BadRequest(f"{where}: expected {_expected(dtype)}, got {describe(value)}")


def check_string(value, where):
    """A JSON string input: a str that is valid Unicode, or bytes from {"b64": ...}."""
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise BadRequest(f"{where}: b64 is not valid base64") from None
    if not isinstance(value, str):
        raise BadRequest(f"{where}: expected a string, got {describe(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{where}: not valid Unicode (a lone surrogate \\u escape)") from None
    return value


def format_predict(request, outputs):
    """The answer to `request`, from `outputs`: one {output name: value} a row (row format) or
    {output name: array} (columnar)."""
    if request.rows:
        rows = [{key: to_json(value) for key, value in row.items()} for row in outputs]
        if rows and len(rows[0]) == 1:
            return {"predictions": [next(iter(row.values())) for row in rows]}
        return {"predictions": rows}
    columns = {key: to_json(value) for key, value in outputs.items()}
    return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}


def to_json(value):
    """A NumPy array, scalar or bytes as JSON values; bytes that are not UTF-8 as {"b64": ...}."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _expected(dtype):
    if dtype == "bool":
        return "true or false"
    return f"an integer ({dtype})" if dtype in _INT_RANGES else f"a number ({dtype})"


def _names(mapping):
    return ", ".join(sorted(mapping))


def describe(value):
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    number = f"the number {value!r}" if isinstance(value, int | float) else type(value).__name__
    return kinds.get(type(value), number)
