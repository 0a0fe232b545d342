"""Caffe2's TensorProto.DataType numbers and their torch dtypes."""
from __future__ import annotations

import torch

from .proto import DATA_TYPES

# STRING and the opaque state types have no tensor equivalent.
_TORCH_DTYPES: dict[int, torch.dtype] = {
    DATA_TYPES["FLOAT"]: torch.float32,
    DATA_TYPES["INT32"]: torch.int32,
    DATA_TYPES["BYTE"]: torch.uint8,
    DATA_TYPES["BOOL"]: torch.bool,
    DATA_TYPES["UINT8"]: torch.uint8,
    DATA_TYPES["INT8"]: torch.int8,
    DATA_TYPES["UINT16"]: torch.uint16,
    DATA_TYPES["INT16"]: torch.int16,
    DATA_TYPES["INT64"]: torch.int64,
    DATA_TYPES["FLOAT16"]: torch.float16,
    DATA_TYPES["DOUBLE"]: torch.float64,
}
_NAMES = {v: k for k, v in DATA_TYPES.items()}


def torch_dtype(data_type: int | str) -> torch.dtype:
    """The torch dtype of a Caffe2 DataType given by number (``10``) or name (``"INT64"``)."""
    if isinstance(data_type, str):
        key = data_type.upper()
        if key not in DATA_TYPES:
            raise ValueError(f"unknown Caffe2 DataType name {data_type!r}")
        data_type = DATA_TYPES[key]
    if data_type not in _TORCH_DTYPES:
        name = _NAMES.get(data_type, "not a DataType")
        raise ValueError(f"Caffe2 DataType {data_type} ({name}) has no tensor equivalent in PyTorch")
    return _TORCH_DTYPES[data_type]


def data_type_name(data_type: int) -> str:
    return _NAMES.get(data_type, str(data_type))
