"""Import Caffe2 models: a NetDef (predict net + init net) as a ``torch.fx.GraphModule``.

    from torch_caffe2ops.caffe2 import load_net
    model = load_net("predict_net.pb", "init_net.pb")
    scores = model(dense, ids, lengths)

Needs the ``protobuf`` package (``pip install "torch_caffe2ops[caffe2]"``); the rest of
torch_caffe2ops does not.
"""
from ._deps import require_protobuf

require_protobuf()

from .errors import (  # noqa: E402
    InvalidArgumentError,
    NetImportError,
    TrainingNetError,
    UnknownArgumentError,
    UnsupportedOperatorError,
)
from .loader import InputPlan, load_net, plan_inputs, run_init_net  # noqa: E402
from .blobs import load_blobs, read_db  # noqa: E402
from .predictor import load_predictor, read_predictor  # noqa: E402
from .proto import (  # noqa: E402
    Argument,
    BlobProto,
    DeviceOption,
    MetaNetDef,
    NetDef,
    OperatorDef,
    TensorProto,
    read_net,
    to_text,
)
from .registry import (  # noqa: E402
    Arg,
    OpCall,
    describe_op,
    get_converter,
    register_converter,
    supported_op_types,
    unregister_converter,
)
from .context import ConversionContext  # noqa: E402
from .converters.sparse_lengths import quantize_tables  # noqa: E402

__all__ = [
    "load_net", "run_init_net", "plan_inputs", "InputPlan", "read_net", "to_text",
    "load_predictor", "read_predictor", "load_blobs", "read_db",
    "register_converter", "unregister_converter", "get_converter", "supported_op_types", "Arg", "OpCall",
    "describe_op", "ConversionContext", "quantize_tables",
    "NetDef", "OperatorDef", "Argument", "TensorProto", "DeviceOption", "BlobProto", "MetaNetDef",
    "NetImportError", "UnsupportedOperatorError", "UnknownArgumentError", "TrainingNetError", "InvalidArgumentError",
]
