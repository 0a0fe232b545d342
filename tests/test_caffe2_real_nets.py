"""Published Caffe2 nets imported with torch_caffe2ops.caffe2 and checked against references
that share no code with the converters.

* The eight Caffe2 model-zoo predict nets in tests/fixtures/caffe2_real/ (weights synthesized
  by tests/caffe2_zoo.py) against ONNX Runtime running the helper's own NetDef -> ONNX
  translation, and against torchvision's models (or, for ResNet-50 without torchvision, a
  ResNet-50 written by hand) with the same weights.
* A brew-style small net in NCHW and NHWC with the hint arguments brew spreads over every op.
* Loader behaviours real nets need: placeholder inputs filled by the init net, external inputs
  nothing reads, ScatterAssign in a predict net, argument-less Clip, newer NetDef fields.
* Fine-tuning, torch.compile and torch.export of the imported ResNet-50.

Tolerances are float32 and relative to the output's scale: max|ours - ref| <= tol * max|ref|.
"""
import copy
import re
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402

from caffe2_zoo import (  # noqa: E402
    REAL,
    TORCHVISION,
    ZOO_MODELS,
    add_op,
    fill,
    logits_blob,
    netdef_to_onnx,
    onnxruntime_reference,
    scale_error,
    torchvision_problem,
    torchvision_reference,
    zoo_case,
    zoo_net,
)

ZOO_TOL = 1e-4  # relative to max|reference|, float32, deep nets (up to 121 conv layers)


def _require_types(net: Any) -> None:
    missing = sorted({op.type for op in net.op} - set(c2.supported_op_types()))
    if missing:
        pytest.fail(f"no converter for {missing}")


def blob_attr(blob: str) -> str:
    """The attribute name a blob's tensor gets on the module (Python identifier spelling)."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", blob).strip("_") or "blob"
    return "_" + name if name[0].isdigit() else name


# --------------------------------------------------------------------------------------------
# the model zoo
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ZOO_MODELS)
def test_zoo_net_matches_onnxruntime(model: str) -> None:
    """Logits and softmax of each zoo net, batch 2, vs ONNX Runtime; tol 1e-4 x max|ref|."""
    pytest.importorskip("onnxruntime")
    net, data, x, weights, shapes = zoo_case(model)
    _require_types(net)
    out = list(net.external_output)
    logits = logits_blob(net)
    blobs = [logits] + [b for b in out if b != logits]
    model_ = c2.load_net(net, init_blobs=weights, outputs=blobs)
    assert model_.caffe2_inputs == [data]
    expected_unused = [b for b in net.external_input if "blobs_queue" in b]  # resnet50's reader queue
    assert model_.caffe2_unused_inputs == expected_unused
    # Every weight is a parameter (trainable), the SpatialBN statistics are buffers.
    params = dict(model_.named_parameters())
    buffers = dict(model_.named_buffers())
    for blob in weights:
        name = blob_attr(blob)
        if re.search(r"(_rm|_riv|bn_mean|bn_var)$", blob):
            assert name in buffers, blob
        else:
            assert name in params, blob
    model_.eval()
    with torch.no_grad():
        ours = model_(x)
    ours = ours if isinstance(ours, tuple) else (ours,)
    onx = netdef_to_onnx(net, {data: list(x.shape)}, weights, blobs, shapes)
    refs = onnxruntime_reference(onx, [x.numpy()])
    for blob, got, ref in zip(blobs, ours, refs):
        ref = torch.from_numpy(ref)
        assert got.shape == ref.shape, (blob, got.shape, ref.shape)
        err, rel = scale_error(got, ref)
        assert rel <= ZOO_TOL, f"{model} {blob}: max abs err {err:.3g}, {rel:.3g} of max|ref|"


@pytest.mark.parametrize("model", sorted(TORCHVISION))
def test_zoo_net_matches_torchvision(model: str) -> None:
    """The zoo net vs torchvision's model of the same architecture with the same weights
    (ResNet-50 falls back to a hand-written one); tol 1e-4 x max|ref| on the logits."""
    if torchvision_problem() is not None and model != "resnet50":
        pytest.skip(torchvision_problem())
    net, data, x, weights, shapes = zoo_case(model)
    _require_types(net)
    blob = TORCHVISION[model][2]
    ref = torchvision_reference(model, weights)
    ours = c2.load_net(net, init_blobs=weights, outputs=[blob]).eval()
    with torch.no_grad():
        got = ours(x)
        want = ref(x)
    got = got.reshape(want.shape)  # the 1x1-conv classifiers give [N, 1000, 1, 1]
    err, rel = scale_error(got, want)
    assert rel <= ZOO_TOL, f"{model}: max abs err {err:.3g}, {rel:.3g} of max|ref|"
    # The net's own output (softmax) too.
    final = c2.load_net(net, init_blobs=weights).eval()
    with torch.no_grad():
        prob = final(x).reshape(want.shape)
    err, rel = scale_error(prob, torch.softmax(want, 1))
    assert rel <= ZOO_TOL, f"{model} softmax: {err:.3g}"


def test_squeezenet_binary_and_decoded_text_are_the_same_net() -> None:
    binary = c2.read_net(REAL / "zoo_squeezenet_predict_net.pb")
    text = c2.read_net(REAL / "zoo_squeezenet_predict_net.from_pb.pbtxt")
    assert binary == text


def test_zoo_squeezenet_is_v1_1() -> None:
    """Caffe2's squeezenet is v1.1 (conv1 3x3 stride 2, pools after conv1/fire3/fire5), not v1.0
    (conv1 7x7, pools after conv1/fire4/fire8)."""
    net, _, _ = zoo_net("squeezenet")
    conv1 = net.op[0]
    assert conv1.type == "Conv" and {a.name: a.i for a in conv1.arg}["kernel"] == 3
    pooled = [op.input[0] for op in net.op if op.type == "MaxPool"]
    assert pooled == ["conv1", "fire3/concat", "fire5/concat"], pooled


# --------------------------------------------------------------------------------------------
# a brew-style net: hint arguments on every op, NCHW and NHWC
# --------------------------------------------------------------------------------------------

HINTS = dict(order=None, use_cudnn=1, cudnn_exhaustive_search=0, exhaustive_search=0, ws_nbytes_limit=1 << 26)
# What Caffe2's operators read of the hints: Conv reads order and the cuDNN selectors
# exhaustive_search / ws_nbytes_limit; pooling and SpatialBN read only order; Relu and FC none.
# use_cudnn / cudnn_exhaustive_search are brew's Python-side keys no operator reads.
UNREAD = {
    "Conv": {"use_cudnn", "cudnn_exhaustive_search"},
    "SpatialBN": {"use_cudnn", "cudnn_exhaustive_search", "exhaustive_search", "ws_nbytes_limit"},
    "MaxPool": {"use_cudnn", "cudnn_exhaustive_search", "exhaustive_search", "ws_nbytes_limit"},
    "AveragePool": {"use_cudnn", "cudnn_exhaustive_search", "exhaustive_search", "ws_nbytes_limit"},
    "Relu": {"order", "use_cudnn", "cudnn_exhaustive_search", "exhaustive_search", "ws_nbytes_limit"},
    "FC": {"order", "use_cudnn", "cudnn_exhaustive_search", "exhaustive_search", "ws_nbytes_limit"},
}

# (conv name, in channels, out channels, group, kernel args, pad args, stride, dilation)
CONVS = [
    ("c1", 4, 8, 1, dict(kernel=3), dict(pad_t=0, pad_l=1, pad_b=2, pad_r=1), 1, 1),  # asymmetric pads
    ("c2", 8, 8, 2, dict(kernel_h=3, kernel_w=1), dict(pads=[1, 0, 1, 0]), 1, 2),  # grouped, dilated
    ("c3", 8, 8, 8, dict(kernels=[3, 3]), dict(pad=1), 2, 1),  # depthwise, strided
]


def brew_net(order: str, with_hints: bool = True):
    """(predict net, NCHW weights by blob, weights in the net's layout) of
    Conv-SpatialBN-Relu x3, MaxPool (legacy ceil mode), AveragePool (asymmetric pads), FC."""
    nhwc = order == "NHWC"
    g = torch.Generator().manual_seed(7)
    net = c2.NetDef(name=f"brew_{order}")
    hints = dict(HINTS, order=order) if with_hints else {}
    w_nchw: Dict[str, torch.Tensor] = {}
    layout: Dict[str, torch.Tensor] = {}
    x = "data"
    for name, cin, cout, group, kernel, pads, stride, dil in CONVS:
        kh = kernel.get("kernel", kernel.get("kernel_h", (kernel.get("kernels") or [0])[0]))
        kw = kernel.get("kernel", kernel.get("kernel_w", (kernel.get("kernels") or [0, 0])[-1]))
        w = torch.randn(cout, cin // group, kh, kw, generator=g) * (2.0 / (cin // group * kh * kw)) ** 0.5
        b = torch.randn(cout, generator=g) * 0.1
        w_nchw[f"{name}_w"], w_nchw[f"{name}_b"] = w, b
        # Caffe2's NHWC filter is [M, kH, kW, C/G]
        layout[f"{name}_w"], layout[f"{name}_b"] = (w.permute(0, 2, 3, 1).contiguous() if nhwc else w), b
        conv_args = dict(kernel, **pads, stride=stride)
        if dil != 1:
            conv_args["dilation"] = dil
        if group != 1:
            conv_args["group"] = group
        if not with_hints and nhwc:
            conv_args["order"] = order
        add_op(net, "Conv", [x, f"{name}_w", f"{name}_b"], [name], **conv_args, **hints)
        stats = (("s", torch.rand(cout, generator=g) + 0.5), ("b", torch.randn(cout, generator=g) * 0.1),
                 ("rm", torch.randn(cout, generator=g) * 0.1), ("riv", torch.rand(cout, generator=g) + 0.5))
        for suffix, value in stats:
            w_nchw[f"{name}_bn_{suffix}"] = layout[f"{name}_bn_{suffix}"] = value
        bn_args = dict(is_test=1, epsilon=1e-5)
        if not with_hints and nhwc:
            bn_args["order"] = order
        add_op(net, "SpatialBN", [name] + [f"{name}_bn_{s}" for s in ("s", "b", "rm", "riv")], [f"{name}_bn"],
               **bn_args, **hints)
        add_op(net, "Relu", [f"{name}_bn"], [f"{name}_bn"], **hints)
        x = f"{name}_bn"
    order_arg = {} if with_hints or not nhwc else {"order": order}
    add_op(net, "MaxPool", [x], ["pool1"], kernel=3, stride=2, pad=1, legacy_pad=3, **order_arg, **hints)
    add_op(net, "AveragePool", ["pool1"], ["pool2"], kernel=2, stride=1, pad_t=0, pad_l=0, pad_b=1, pad_r=1,
           **order_arg, **hints)
    # 4 x 4 x 8 features; the FC reads them in the layout's flattening order
    fc = torch.randn(5, 8 * 4 * 4, generator=g) * (1.0 / 128) ** 0.5
    w_nchw["fc_w"] = fc
    layout["fc_w"] = fc.reshape(5, 8, 4, 4).permute(0, 2, 3, 1).reshape(5, -1).contiguous() if nhwc else fc
    w_nchw["fc_b"] = layout["fc_b"] = torch.randn(5, generator=g) * 0.1
    add_op(net, "FC", ["pool2", "fc_w", "fc_b"], ["out"], **hints)
    net.external_input.extend(["data"] + list(layout))
    net.external_output.append("out")
    return net, w_nchw, layout


def brew_reference(x: torch.Tensor, w: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The brew net in NCHW with torch.nn.functional, the padding spelled out by hand."""
    for name, cin, cout, group, kernel, pads, stride, dil in CONVS:
        if "pads" in pads:
            t, l, b, r = pads["pads"]
        elif "pad" in pads:
            t = l = b = r = pads["pad"]
        else:
            t, l, b, r = pads["pad_t"], pads["pad_l"], pads["pad_b"], pads["pad_r"]
        x = F.conv2d(F.pad(x, (l, r, t, b)), w[f"{name}_w"], w[f"{name}_b"], stride, 0, dil, group)
        s, bb, rm, rv = (w[f"{name}_bn_{k}"] for k in ("s", "b", "rm", "riv"))
        x = (x - rm[:, None, None]) / torch.sqrt(rv[:, None, None] + 1e-5) * s[:, None, None] + bb[:, None, None]
        x = torch.relu(x)
    # Caffe's ceil-mode pooling is torch's ceil_mode with the same (symmetric) padding
    x = F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    # bottom/right pad of 1; the average counts only the real elements
    ones = F.pad(torch.ones_like(x[:1, :1]), (0, 1, 0, 1))
    x = F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1, divisor_override=1) / F.avg_pool2d(ones, 2, 1, divisor_override=1)
    return x.flatten(1) @ w["fc_w"].t() + w["fc_b"]


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_brew_style_net_in_both_orders(order: str) -> None:
    """Grouped, depthwise, dilated, asymmetrically padded convs, Caffe ceil-mode max pooling,
    padded average pooling, NHWC filters [M, kH, kW, C/G]; tol 1e-5 x max|ref|."""
    net, w_nchw, layout = brew_net(order)
    _require_types(net)
    x = torch.randn(2, 4, 13, 11, generator=torch.Generator().manual_seed(1))
    want = brew_reference(x, w_nchw)
    model = c2.load_net(net, init_blobs=layout).eval()
    with torch.no_grad():
        got = model(x.permute(0, 2, 3, 1).contiguous() if order == "NHWC" else x)
    assert got.shape == want.shape
    err, rel = scale_error(got, want)
    assert rel <= 1e-5, (err, rel)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_hint_arguments_ignored_or_listed_with_strict(order: str) -> None:
    net, _, layout = brew_net(order)
    bare, _, _ = brew_net(order, with_hints=False)
    _require_types(net)
    x = torch.randn(2, 4, 13, 11)
    x = x.permute(0, 2, 3, 1).contiguous() if order == "NHWC" else x
    loose = c2.load_net(net, init_blobs=layout, strict=False).eval()
    plain = c2.load_net(bare, init_blobs=layout, strict=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(loose(x), plain(x), rtol=0, atol=0)
    expected: Dict[str, int] = {}
    for op in net.op:
        for a in UNREAD[op.type]:
            key = f"{op.type}.{a}"
            expected[key] = expected.get(key, 0) + 1
    assert loose.caffe2_ignored_arguments == expected
    with pytest.raises(c2.UnknownArgumentError) as info:
        c2.load_net(net, init_blobs=layout, strict=True)
    message = str(info.value)
    lines = {int(m.group(1)): line.strip() for line in message.splitlines()
             for m in [re.search(r"operator #(\d+)\b", line)] if m}
    assert sorted(lines) == list(range(len(net.op))), message
    for index, op in enumerate(net.op):
        line = lines[index]
        assert line.startswith(f"{op.type} ("), line
        for a in UNREAD[op.type]:
            assert repr(a) in line, (a, line)
        for a in set(HINTS) - UNREAD[op.type]:
            assert repr(a) not in line, (a, line)


def test_zoo_nets_carry_no_unread_arguments() -> None:
    """The zoo nets' arguments are all ones Caffe2's operators read: strict=True loads them."""
    for model in ZOO_MODELS:
        net, data, shape = zoo_net(model)
        if {op.type for op in net.op} - set(c2.supported_op_types()):
            continue
        lines = [line for line in _unread(net)]
        assert not lines, (model, lines[:3])


def _unread(net: Any) -> List[str]:
    try:
        c2.load_net(net, inputs=None, outputs=[net.op[0].output[0]], strict=True,
                    init_blobs={b: torch.zeros(1) for b in net.external_input[1:]})
    except c2.UnknownArgumentError as e:
        return str(e).splitlines()
    except c2.NetImportError:
        return []  # only the strict argument check matters here
    return []


# --------------------------------------------------------------------------------------------
# loader behaviours real nets depend on
# --------------------------------------------------------------------------------------------


def _fc_nets(input_blob: str):
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    b = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    init = c2.NetDef(name="init")
    fill(init, "W", w)
    fill(init, "b", b)
    predict = c2.NetDef(name="predict")
    add_op(predict, "FC", [input_blob, "W", "b"], ["y"])
    predict.external_input.extend([input_blob, "W", "b"])
    predict.external_output.append("y")
    return init, predict, w, b


def test_init_net_placeholder_for_the_input_is_an_input() -> None:
    """Caffe2 mobile init nets create the input blob (ConstantFill -> data) so that the
    workspace has it; the Predictor overwrote it with the caller's tensor."""
    init, predict, w, b = _fc_nets("data")
    add_op(init, "ConstantFill", [], ["data"], shape=[1, 4], value=0.0)
    model = c2.load_net(predict, init)
    assert model.caffe2_inputs == ["data"]
    assert tuple(model.caffe2_input_hints["data"].shape) == (1, 4)
    x = torch.randn(5, 4)
    torch.testing.assert_close(model(x), x @ torch.from_numpy(w).t() + torch.from_numpy(b))
    assert "data" not in dict(model.named_parameters()) and "data" not in dict(model.named_buffers())


def test_onnx_export_style_init_net_with_the_example_input() -> None:
    """Nets exported through ONNX name the input '1' and keep the example input in the init net."""
    init, predict, w, b = _fc_nets("1")
    fill(init, "1", np.full((2, 4), 7.0, dtype=np.float32))
    for net in (predict, init):
        net.op.sort(key=lambda op: op.output[0] != "1")
    model = c2.load_net(predict.SerializeToString(), c2.to_text(init))
    assert model.caffe2_inputs == ["1"]
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), x @ torch.from_numpy(w).t() + torch.from_numpy(b))


def test_external_input_no_operator_reads_is_left_out() -> None:
    net, data, _ = zoo_net("resnet50")
    queue = [b for b in net.external_input if "imagenet1k_blobs_queue_" in b]
    assert len(queue) == 1  # the real net keeps its training reader's queue blob
    init, predict, w, b = _fc_nets("x")
    predict.external_input.insert(0, queue[0])
    predict.external_input.append("unused_after")
    model = c2.load_net(predict, init)
    assert model.caffe2_inputs == ["x"]
    assert model.caffe2_unused_inputs == [queue[0], "unused_after"]
    x = torch.randn(2, 4)
    torch.testing.assert_close(model(x), x @ torch.from_numpy(w).t() + torch.from_numpy(b))


def test_scatter_assign_in_a_predict_net_loads() -> None:
    """ScatterAssign also updates parameters in training nets, but is a plain forward op."""
    net = c2.NetDef(name="scatter")
    add_op(net, "ScatterAssign", ["data", "idx", "rows"], ["data"])
    add_op(net, "Relu", ["data"], ["y"])
    net.external_input.extend(["data", "idx", "rows"])
    net.external_output.append("y")
    model = c2.load_net(net)
    data = np.random.RandomState(0).randn(6, 3).astype(np.float32)
    idx = np.array([4, 1], dtype=np.int64)
    rows = np.random.RandomState(1).randn(2, 3).astype(np.float32)
    want = data.copy()
    want[idx] = rows
    got = model(torch.from_numpy(data), torch.from_numpy(idx), torch.from_numpy(rows))
    np.testing.assert_array_equal(got.numpy(), np.maximum(want, 0))


def test_clip_without_bounds_is_identity() -> None:
    net = c2.NetDef(name="clip")
    add_op(net, "Clip", ["x"], ["y"])
    net.external_input.append("x")
    net.external_output.append("y")
    x = torch.tensor([-3.4e38, -1.0, 0.0, 2.5, 3.4e38, float("inf"), float("-inf")])
    torch.testing.assert_close(c2.load_net(net)(x), x, rtol=0, atol=0)
    with open(REAL / "glow_clip_op_default_net.pbtxt") as f:
        glow = c2.read_net(f.read())
    clip = [op for op in glow.op if op.type == "Clip"]
    assert clip and not any(a.name in ("min", "max") for op in clip for a in op.arg)


def test_netdef_text_with_partition_info_loads() -> None:
    text = """
    name: "partitioned"
    op { input: "x" output: "y" type: "Relu" device_option { node_name: "p0" } }
    external_input: "x"
    external_output: "y"
    partition_info { name: "p0" device_id: 0 extra_info: "hint" }
    partition_info { name: "p1" device_id: 1 device_id: 2 }
    """
    model = c2.load_net(text)
    x = torch.randn(4)
    torch.testing.assert_close(model(x), torch.relu(x))


def test_binary_net_with_an_unknown_future_field_loads() -> None:
    net = c2.NetDef(name="future")
    add_op(net, "Relu", ["x"], ["y"])
    net.external_input.append("x")
    net.external_output.append("y")

    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([n & 0x7F | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    # field 77 (varint 5) and field 78 (length-delimited "abc"): numbers no NetDef has
    data = net.SerializeToString() + varint(77 << 3 | 0) + varint(5) + varint(78 << 3 | 2) + varint(3) + b"abc"
    assert c2.read_net(data).external_input == ["x"]
    model = c2.load_net(data)
    x = torch.randn(3)
    torch.testing.assert_close(model(x), torch.relu(x))


# --------------------------------------------------------------------------------------------
# the imported ResNet-50: fine-tuning, compile, export
# --------------------------------------------------------------------------------------------

SMALL = 64  # input side for the training / compile / export checks


def _resnet50_small():
    """The zoo ResNet-50 with its final 7x7 AveragePool made global so that a 64x64 input
    works (the reference pools adaptively anyway), its weights and torchvision's twin."""
    net, data, _, weights, _ = zoo_case("resnet50")
    _require_types(net)
    net = copy.deepcopy(net)
    pool = next(op for op in net.op if op.type == "AveragePool")
    del pool.arg[:]
    pool.arg.add(name="global_pooling", i=1)
    model = c2.load_net(net, init_blobs={k: v.clone() for k, v in weights.items()}, outputs=["gpu_0/pred"])
    ref = torchvision_reference("resnet50", {k: v.clone() for k, v in weights.items()})
    x = torch.randn(2, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(5))
    return net, model, ref, x


def test_resnet50_fine_tuning_matches_the_reference() -> None:
    """train(): batch statistics, running statistics updated with Caffe2's momentum (0.9, the
    SpatialBN default) and Caffe2's biased batch variance; then one SGD step. Reference: torch
    BatchNorm with momentum 1 - 0.9, whose running_var takes the unbiased variance, converted.
    Tolerance 1e-4 x scale (gradients through 53 batch-normalised layers)."""
    net, model, ref, x = _resnet50_small()
    momentum = 0.9
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1 - momentum
    # parameters vs buffers
    names = {blob_attr(b) for op in net.op if op.type == "SpatialBN" for b in op.input[3:5]}
    assert names <= set(dict(model.named_buffers()))
    assert not names & set(dict(model.named_parameters()))
    assert len(list(model.parameters())) == len(list(ref.parameters()))

    bn_pairs = []  # (our mean, our var buffer names, torch module, input element count)
    counts: Dict[str, int] = {}
    hooks = []
    for name, m in ref.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: counts.__setitem__(name, inp[0].numel() // inp[0].shape[1])))
    caffe_of = _resnet50_bn_names()
    before = {name: (m.running_mean.clone(), m.running_var.clone()) for name, m in ref.named_modules()
              if isinstance(m, torch.nn.BatchNorm2d)}

    model.train()
    ref.train()
    target = torch.randn(2, 1000, generator=torch.Generator().manual_seed(9))
    out, want = model(x), ref(x)
    for h in hooks:
        h.remove()
    err, rel = scale_error(out.detach(), want.detach())
    assert rel <= 1e-4, ("train forward", err, rel)
    buffers = dict(model.named_buffers())
    caffe_vars = {}
    for name, m in ref.named_modules():
        if not isinstance(m, torch.nn.BatchNorm2d):
            continue
        rm0, rv0 = before[name]
        n = counts[name]
        unbiased_batch = (m.running_var - momentum * rv0) / (1 - momentum)
        caffe_var = momentum * rv0 + (1 - momentum) * unbiased_batch * (n - 1) / n
        mean_blob, var_blob = caffe_of[name]
        torch.testing.assert_close(buffers[blob_attr(mean_blob)], m.running_mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(buffers[blob_attr(var_blob)], caffe_var, rtol=1e-4, atol=1e-5)
        caffe_vars[name] = caffe_var

    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=1e-3)
    (out * target).sum().backward()
    (want * target).sum().backward()
    ours_grad = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in ours_grad.values())
    fc_grad = ours_grad[blob_attr("gpu_0/pred_w")]
    err, rel = scale_error(fc_grad, ref.fc.weight.grad)
    assert rel <= 1e-4, ("fc grad", err, rel)
    conv1_grad = ours_grad[blob_attr("gpu_0/conv1_w")]
    err, rel = scale_error(conv1_grad, ref.conv1.weight.grad)
    assert rel <= 1e-3, ("conv1 grad", err, rel)
    opt.step()
    opt_ref.step()
    # Inference after the step: the reference gets Caffe2's (biased) running variance.
    with torch.no_grad():
        for name, m in ref.named_modules():
            if name in caffe_vars:
                m.running_var.copy_(caffe_vars[name])
    model.eval()
    ref.eval()
    with torch.no_grad():
        got, want = model(x), ref(x)
    assert torch.isfinite(want).all()
    err, rel = scale_error(got, want)
    assert rel <= 1e-3, ("after one step", err, rel)


def _resnet50_bn_names() -> Dict[str, tuple]:
    """torchvision BatchNorm module name -> (Caffe2 running mean blob, running var blob)."""
    out = {"bn1": ("gpu_0/res_conv1_bn_rm", "gpu_0/res_conv1_bn_riv")}
    for stage, blocks in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            for i, br in enumerate("abc", 1):
                out[f"layer{stage - 1}.{b}.bn{i}"] = tuple(
                    f"gpu_0/res{stage}_{b}_branch2{br}_bn_{s}" for s in ("rm", "riv"))
            if b == 0:
                out[f"layer{stage - 1}.{b}.downsample.1"] = tuple(
                    f"gpu_0/res{stage}_{b}_branch1_bn_{s}" for s in ("rm", "riv"))
    return out


def test_resnet50_compile_equals_eager() -> None:
    """Dynamo captures the imported net whole (aot_eager keeps CI time small; the benchmark
    compiles it with inductor); tol 1e-4 x max|eager|."""
    _, model, _, x = _resnet50_small()
    model.eval()
    with torch.no_grad():
        want = model(x)
        explained = torch._dynamo.explain(model)(x)
        assert explained.graph_break_count == 0, explained.break_reasons
        got = torch.compile(model, backend="aot_eager", fullgraph=True)(x)
    err, rel = scale_error(got, want)
    assert rel <= 1e-4, (err, rel)


def test_resnet50_export_with_dynamic_batch() -> None:
    _, model, _, x = _resnet50_small()
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    x3 = torch.randn(3, 3, SMALL, SMALL)
    with torch.no_grad():
        err, rel = scale_error(exported.module()(x3), model(x3))
    assert rel <= 1e-5, (err, rel)
