"""Import Caffe2 models: a NetDef (predict net + init net) as a ``torch.fx.GraphModule``.

    from torch_caffe2ops.caffe2 import load_net
    model = load_net("predict_net.pb", "init_net.pb")
    scores = model(dense, ids, lengths)

Needs the ``protobuf`` package (``pip install protobuf``); the rest of torch_caffe2ops does not.
"""
from .errors import (
    InvalidArgumentError,
    NetImportError,
    TrainingNetError,
    UnknownArgumentError,
    UnsupportedOperatorError,
)
from .loader import load_net, run_init_net
from .proto import Argument, DeviceOption, NetDef, OperatorDef, TensorProto, read_net, to_text
from .registry import Arg, OpCall, get_converter, register_converter, supported_op_types, unregister_converter
from .context import ConversionContext

__all__ = [
    "load_net", "run_init_net", "read_net", "to_text",
    "register_converter", "unregister_converter", "get_converter", "supported_op_types", "Arg", "OpCall",
    "ConversionContext",
    "NetDef", "OperatorDef", "Argument", "TensorProto", "DeviceOption",
    "NetImportError", "UnsupportedOperatorError", "UnknownArgumentError", "TrainingNetError", "InvalidArgumentError",
]
