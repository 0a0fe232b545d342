"""Test helper for the published Caffe2 nets in tests/fixtures/caffe2_real/.

The zoo predict nets come without weights (the init nets are Git-LFS objects that were never
fetched), so the tests synthesize them: the shapes follow from the net's own operators (kernel,
group, pads, concatenations, FC input sizes) walked here with Caffe2's output-size rules and
from each model's documented layer widths; the values are seeded random numbers scaled so that
activations stay O(1).

Independent references (nothing here imports the converters):

* torchvision's resnet50 / vgg19 / squeezenet1_1 / densenet121 with the same weights mapped
  onto their state_dicts;
* ONNX Runtime running an ONNX graph that :func:`netdef_to_onnx` writes from the NetDef, a
  translation of the dozen operator types the zoo uses, written from Caffe2's semantics.
"""
import functools
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from torch_caffe2ops import caffe2 as c2
from utils import add_op, fill  # noqa: F401  (re-exported for the tests)

REAL = Path(__file__).parent / "fixtures" / "caffe2_real"
ZOO_MODELS = ["resnet50", "bvlc_alexnet", "vgg19", "squeezenet", "inception_v1", "inception_v2", "densenet121",
              "zfnet512"]


def arg_dict(op: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for a in op.arg:
        if a.HasField("i"):
            out[a.name] = int(a.i)
        elif a.HasField("f"):
            out[a.name] = float(a.f)
        elif a.HasField("s"):
            out[a.name] = a.s.decode()
        elif len(a.ints):
            out[a.name] = [int(v) for v in a.ints]
        elif len(a.floats):
            out[a.name] = [float(v) for v in a.floats]
        else:
            out[a.name] = None
    return out


# --------------------------------------------------------------------------------------------
# the zoo files
# --------------------------------------------------------------------------------------------


def zoo_net(model: str) -> Tuple[Any, str, List[int]]:
    """(predict NetDef, input blob, input shape from value_info.json)."""
    if model == "squeezenet":
        net = c2.read_net(REAL / "zoo_squeezenet_predict_net.pb")
    else:
        net = c2.read_net(REAL / f"zoo_{model}_predict_net.pbtxt")
    info = json.loads((REAL / f"zoo_{model}_value_info.json").read_text())
    (name, (dtype, shape)), = info.items()
    assert dtype == 1  # FLOAT
    return net, name, list(shape)


# --------------------------------------------------------------------------------------------
# Caffe2's ConvPoolOpBase geometry (conv_pool_op_base.h), restated
# --------------------------------------------------------------------------------------------


def _pair(a: Dict[str, Any], plural: str, single: str, default: int) -> List[int]:
    if plural in a:
        return list(a[plural])
    if single in a:
        return [a[single], a[single]]
    if f"{single}_h" in a and f"{single}_w" in a:
        return [a[f"{single}_h"], a[f"{single}_w"]]
    return [default, default]


def geometry(a: Dict[str, Any], spatial: Sequence[int]):
    """(kernel, stride, dilation, pads [t, l, b, r] as actually applied, output spatial size)."""
    if a.get("global_pooling"):
        return list(spatial), [1, 1], [1, 1], [0, 0, 0, 0], [1, 1]
    kernel = _pair(a, "kernels", "kernel", 0)
    stride = _pair(a, "strides", "stride", 1)
    dil = _pair(a, "dilations", "dilation", 1)
    if "pads" in a:
        pads = list(a["pads"])
    elif "pad" in a:
        pads = [a["pad"]] * 4
    elif all(k in a for k in ("pad_t", "pad_l", "pad_b", "pad_r")):
        pads = [a["pad_t"], a["pad_l"], a["pad_b"], a["pad_r"]]
    else:
        pads = [0, 0, 0, 0]
    legacy = a.get("legacy_pad", 0)
    out = []
    for i, n in enumerate(spatial):
        k, s, d = kernel[i], stride[i], dil[i]
        dk = d * (k - 1) + 1
        if legacy == 3:  # Caffe's ceil-mode pooling; the tail pad is recomputed
            head = pads[i]
            o = int(math.ceil((n + 2 * head - k) / s + 1))
            if head > 0 and (o - 1) * s >= n + head:
                o -= 1
            std = int((n + 2 * head - k) / s + 1)
            pads[i + 2] = head + s * (o - std)
        elif legacy == 1:  # VALID
            pads[i] = pads[i + 2] = 0
            o = (n - dk) // s + 1
        elif legacy == 2:  # SAME
            target = -(-n // s)
            need = (target - 1) * s + k - n
            pads[i], pads[i + 2] = need // 2, need - need // 2
            o = (n + need - dk) // s + 1
        else:
            o = int((n + pads[i] + pads[i + 2] - dk) / s + 1)
        out.append(o)
    return kernel, stride, dil, pads, out


# --------------------------------------------------------------------------------------------
# weight shapes and synthesis
# --------------------------------------------------------------------------------------------

# Output widths of the models' convolutions and FCs (weight blob -> M), from the papers /
# Caffe prototxts the zoo nets were translated from (torchvision_reference checks them against
# torchvision's state_dict where torchvision has the model).
_GOOGLENET = {  # Szegedy et al. 2014, Table 1: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64), "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
_BN_INCEPTION = {  # Ioffe & Szegedy 2015, Table 1: 1x1, 3x3 reduce, 3x3, double reduce, double 3x3, proj
    "3a": (64, 64, 64, 64, 96, 32), "3b": (64, 64, 96, 64, 96, 64), "3c": (0, 128, 160, 64, 96, 0),
    "4a": (224, 64, 96, 96, 128, 128), "4b": (192, 96, 128, 96, 128, 128), "4c": (160, 128, 160, 128, 160, 128),
    "4d": (96, 128, 192, 160, 192, 128), "4e": (0, 128, 192, 192, 256, 0), "5a": (352, 192, 320, 160, 224, 128),
    "5b": (352, 192, 320, 192, 224, 128),
}


def _widths_googlenet(w: str) -> int:
    fixed = {"conv1/7x7_s2_w": 64, "conv2/3x3_reduce_w": 64, "conv2/3x3_w": 192, "loss3/classifier_w": 1000}
    if w in fixed:
        return fixed[w]
    m = re.fullmatch(r"inception_(\w\w)/(1x1|3x3_reduce|3x3|5x5_reduce|5x5|pool_proj)_w", w)
    keys = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")
    return _GOOGLENET[m.group(1)][keys.index(m.group(2))]


def _widths_bn_inception(w: str) -> int:
    fixed = {"conv1/7x7_s2_w": 64, "conv2/3x3_reduce_w": 64, "conv2/3x3_w": 192, "loss3/classifier_w": 1000}
    if w in fixed:
        return fixed[w]
    m = re.fullmatch(r"inception_(\w\w)/(1x1|3x3_reduce|3x3|double3x3_reduce|double3x3a|double3x3b|pool_proj)_w", w)
    keys = ("1x1", "3x3_reduce", "3x3", "double3x3_reduce", "double3x3", "pool_proj")
    part = "double3x3" if m.group(2).startswith("double3x3") and m.group(2) != "double3x3_reduce" else m.group(2)
    return _BN_INCEPTION[m.group(1)][keys.index(part)]


def _widths_resnet50(w: str) -> int:
    if w == "gpu_0/conv1_w":
        return 64
    if w == "gpu_0/pred_w":
        return 1000
    m = re.fullmatch(r"gpu_0/res(\d)_\d+_branch(1|2a|2b|2c)_w", w)
    width = 64 << (int(m.group(1)) - 2)
    return width * 4 if m.group(2) in ("1", "2c") else width


def _widths_vgg19(w: str) -> int:
    if w.startswith("fc"):
        return 1000 if w == "fc8_w" else 4096
    return 64 << min(int(w[4]) - 1, 3)  # conv<block>_<i>_w: 64, 128, 256, 512, 512


def _widths_squeezenet(w: str) -> int:
    # SqueezeNet v1.1 (the net's 3x3/64 conv1 and 227 input): squeeze s, expands 4s per fire
    if w == "conv1_w":
        return 64
    if w == "conv10_w":
        return 1000
    m = re.fullmatch(r"fire(\d)/(squeeze1x1|expand1x1|expand3x3)_w", w)
    s = {2: 16, 3: 16, 4: 32, 5: 32, 6: 48, 7: 48, 8: 64, 9: 64}[int(m.group(1))]
    return s if m.group(2) == "squeeze1x1" else 4 * s


def _widths_densenet121(w: str) -> int:
    # growth rate 32, bottleneck 4 * 32, transitions halve the channels
    fixed = {"conv1_w": 64, "fc6_w": 1000, "conv2_blk_w": 128, "conv3_blk_w": 256, "conv4_blk_w": 512}
    if w in fixed:
        return fixed[w]
    return 128 if w.endswith("/x1_w") else 32


WIDTHS: Dict[str, Callable[[str], int]] = {
    # BVLC AlexNet (Caffe's bvlc_alexnet deploy.prototxt)
    "bvlc_alexnet": lambda w: {"conv1_w": 96, "conv2_w": 256, "conv3_w": 384, "conv4_w": 384, "conv5_w": 256,
                               "fc6_w": 4096, "fc7_w": 4096, "fc8_w": 1000}[w],
    # ZFNet-512: Zeiler & Fergus' widened layers 3-5 (512, 1024, 512 maps)
    "zfnet512": lambda w: {"conv1_w": 96, "conv2_w": 256, "conv3_w": 512, "conv4_w": 1024, "conv5_w": 512,
                           "fc6_w": 4096, "fc7_w": 4096, "fc8_w": 1000}[w.split("/")[-1]],
    "inception_v1": _widths_googlenet,
    "inception_v2": _widths_bn_inception,
    "resnet50": _widths_resnet50,
    "vgg19": _widths_vgg19,
    "squeezenet": _widths_squeezenet,
    "densenet121": _widths_densenet121,
}


def param_shapes(net: Any, inputs: Dict[str, Sequence[int]], width: Callable[[str], int]):
    """Walk an NCHW predict net: (parameter blob -> shape, blob -> shape, parameter blob -> role).

    A parameter is an input blob that no earlier operator produced and that is not a fed
    input; its shape follows from where it is read."""
    shapes: Dict[str, List[int]] = {k: list(v) for k, v in inputs.items()}
    params: Dict[str, List[int]] = {}
    roles: Dict[str, str] = {}
    # Branches that a Sum adds up get a small BN scale, so that the residual stream does not
    # double its variance at every block.
    summed = {b for op in net.op if op.type == "Sum" for b in op.input}

    def param(blob: str, shape: List[int], role: str) -> None:
        if blob in shapes and blob not in params:
            return
        params[blob] = list(shape)
        roles[blob] = role
        shapes[blob] = list(shape)

    for op in net.op:
        a = arg_dict(op)
        t = op.type
        x = shapes[op.input[0]] if op.input else None
        if t == "Conv":
            g = a.get("group", 1)
            kernel, _, _, _, out = geometry(a, x[2:])
            m = width(op.input[1])
            param(op.input[1], [m, x[1] // g] + kernel, "conv_w")
            if len(op.input) > 2:
                param(op.input[2], [m], "bias")
            y = [x[0], m] + out
        elif t in ("MaxPool", "AveragePool"):
            y = x[:2] + geometry(a, x[2:])[4]
        elif t == "SpatialBN":
            scale = "residual_scale" if op.output[0] in summed else "bn_scale"
            for blob, role in zip(op.input[1:5], (scale, "bn_bias", "bn_mean", "bn_var")):
                param(blob, [x[1]], role)
            y = x
        elif t in ("Mul", "Add") and (op.input[1] not in shapes or op.input[1] in params):
            assert a.get("broadcast") and a.get("axis") == 1
            param(op.input[1], [x[1]], "scale_w" if t == "Mul" else "scale_b")
            y = x
        elif t == "FC":
            k = int(np.prod(x[1:]))
            n = width(op.input[1])
            # axis_w: W is read as [prod(dims[:axis_w]), prod(dims[axis_w:])]
            axis_w = a.get("axis_w", 1)
            param(op.input[1], [n] + [1] * (axis_w - 1) + [k], "fc_w")
            param(op.input[2], [n], "bias")
            y = [x[0], n]
        elif t == "Concat":
            parts = [shapes[b] for b in op.input]
            y = list(parts[0])
            y[1] = sum(p[1] for p in parts)
            shapes[op.output[1]] = [len(parts)]
        elif t in ("Relu", "Dropout", "LRN", "Softmax", "Sum", "Add", "Mul"):
            y = x
            for extra in op.output[1:]:
                shapes[extra] = x
        else:
            raise NotImplementedError(t)
        shapes[op.output[0]] = list(y)
    return params, shapes, roles


def synthesize(params: Dict[str, List[int]], roles: Dict[str, str], seed: int) -> Dict[str, torch.Tensor]:
    """Seeded weights with scales that keep activations O(1): He-scaled conv/FC weights, small
    biases, BN statistics near the identity (running variance positive)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for blob in sorted(params):
        shape, role = params[blob], roles[blob]
        if role in ("conv_w", "fc_w"):
            fan_in = int(np.prod(shape[1:]))
            gain = 2.0 if role == "conv_w" else 1.0
            v = torch.randn(shape, generator=g) * math.sqrt(gain / fan_in)
        elif role in ("bias", "bn_bias", "bn_mean", "scale_b"):
            v = torch.randn(shape, generator=g) * 0.1
        elif role in ("bn_scale", "scale_w"):
            v = torch.rand(shape, generator=g) * 0.5 + 0.75
        elif role == "residual_scale":
            v = torch.rand(shape, generator=g) * 0.1 + 0.15
        elif role == "bn_var":
            v = torch.rand(shape, generator=g) * 0.5 + 0.75
        else:
            raise AssertionError(role)
        out[blob] = v.contiguous()
    return out


# --------------------------------------------------------------------------------------------
# torchvision references: blob names -> state_dict keys
# --------------------------------------------------------------------------------------------


def _resnet50_state(w: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    sd = {}

    def bn(prefix: str, caffe: str) -> None:
        sd[f"{prefix}.weight"] = w[f"gpu_0/{caffe}_s"]
        sd[f"{prefix}.bias"] = w[f"gpu_0/{caffe}_b"]
        sd[f"{prefix}.running_mean"] = w[f"gpu_0/{caffe}_rm"]
        # Caffe2's SpatialBN reads its 5th input as the variance, whatever the blob is called.
        sd[f"{prefix}.running_var"] = w[f"gpu_0/{caffe}_riv"]
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    sd["conv1.weight"] = w["gpu_0/conv1_w"]
    bn("bn1", "res_conv1_bn")
    for stage, blocks in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            p = f"layer{stage - 1}.{b}"
            for i, br in enumerate("abc", 1):
                sd[f"{p}.conv{i}.weight"] = w[f"gpu_0/res{stage}_{b}_branch2{br}_w"]
                bn(f"{p}.bn{i}", f"res{stage}_{b}_branch2{br}_bn")
            if b == 0:
                sd[f"{p}.downsample.0.weight"] = w[f"gpu_0/res{stage}_{b}_branch1_w"]
                bn(f"{p}.downsample.1", f"res{stage}_{b}_branch1_bn")
    sd["fc.weight"] = w["gpu_0/pred_w"]
    sd["fc.bias"] = w["gpu_0/pred_b"]
    return sd


def _vgg19_state(w: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    sd, idx = {}, 0
    for block, n in zip(range(1, 6), (2, 2, 4, 4, 4)):
        for i in range(1, n + 1):
            sd[f"features.{idx}.weight"] = w[f"conv{block}_{i}_w"]
            sd[f"features.{idx}.bias"] = w[f"conv{block}_{i}_b"]
            idx += 2  # conv, relu
        idx += 1  # max pool
    for name, i in (("fc6", 0), ("fc7", 3), ("fc8", 6)):
        sd[f"classifier.{i}.weight"] = w[f"{name}_w"]
        sd[f"classifier.{i}.bias"] = w[f"{name}_b"]
    return sd


def _squeezenet_state(w: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    # torchvision squeezenet1_1.features: conv(0) relu pool(2) fire3 fire4 pool(5) fire6 fire7
    # pool(8) fire9..fire12; the Caffe net numbers its fire modules 2..9.
    sd = {"features.0.weight": w["conv1_w"], "features.0.bias": w["conv1_b"]}
    for fire, idx in zip(range(2, 10), (3, 4, 6, 7, 9, 10, 11, 12)):
        for part in ("squeeze", "expand1x1", "expand3x3"):
            caffe = f"fire{fire}/{'squeeze1x1' if part == 'squeeze' else part}"
            sd[f"features.{idx}.{part}.weight"] = w[f"{caffe}_w"]
            sd[f"features.{idx}.{part}.bias"] = w[f"{caffe}_b"]
    sd["classifier.1.weight"] = w["conv10_w"]
    sd["classifier.1.bias"] = w["conv10_b"]
    return sd


def _densenet121_state(w: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    sd = {}

    def bn(prefix: str, caffe: str, eps_var: bool = True) -> None:
        # Caffe's BatchNorm + Scale pair: y = ((x - m) / sqrt(v + eps) * s + b) * w + c, one
        # torch BatchNorm2d with weight s*w and bias b*w + c.
        s, b, wt, c = w[f"{caffe}/bn_scale"], w[f"{caffe}/bn_bias"], w[f"{caffe}/bn_w"], w[f"{caffe}/bn_b"]
        sd[f"{prefix}.weight"] = s * wt
        sd[f"{prefix}.bias"] = b * wt + c
        sd[f"{prefix}.running_mean"] = w[f"{caffe}/bn_mean"]
        sd[f"{prefix}.running_var"] = w[f"{caffe}/bn_var"]
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    sd["features.conv0.weight"] = w["conv1_w"]
    bn("features.norm0", "conv1")
    for block, layers in zip((2, 3, 4, 5), (6, 12, 24, 16)):
        for i in range(1, layers + 1):
            p = f"features.denseblock{block - 1}.denselayer{i}"
            bn(f"{p}.norm1", f"conv{block}_{i}/x1")
            sd[f"{p}.conv1.weight"] = w[f"conv{block}_{i}/x1_w"]
            bn(f"{p}.norm2", f"conv{block}_{i}/x2")
            sd[f"{p}.conv2.weight"] = w[f"conv{block}_{i}/x2_w"]
        if block < 5:
            bn(f"features.transition{block - 1}.norm", f"conv{block}_blk")
            sd[f"features.transition{block - 1}.conv.weight"] = w[f"conv{block}_blk_w"]
    bn("features.norm5", "conv5_blk")
    sd["classifier.weight"] = w["fc6_w"].reshape(w["fc6_w"].shape[0], -1)
    sd["classifier.bias"] = w["fc6_b"]
    return sd


# --------------------------------------------------------------------------------------------
# ResNet-50 written by hand (He et al. 2016, the torchvision v1.5 layout: stride on the 3x3),
# with torchvision's state_dict keys; used where torchvision itself is not importable
# --------------------------------------------------------------------------------------------


class _Bottleneck(torch.nn.Module):
    def __init__(self, cin: int, width: int, stride: int, down: bool):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False),
                                         nn.BatchNorm2d(width * 4)) if down else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # as torchvision's Bottleneck: ReLU(inplace=True) and out += identity
        y = torch.relu_(self.bn1(self.conv1(x)))
        y = torch.relu_(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        y += self.downsample(x) if self.downsample is not None else x
        return torch.relu_(y)


class HandResNet50(torch.nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
            layers = []
            for b in range(blocks):
                layers.append(_Bottleneck(cin, width, stride if b == 0 else 1, b == 0))
                cin = width * 4
            setattr(self, f"layer{i}", nn.Sequential(*layers))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(torch.relu_(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


@functools.lru_cache(None)
def torchvision_problem() -> Optional[str]:
    """Why torchvision cannot be used here (None when it can)."""
    try:
        import torchvision  # noqa: F401
    except Exception as e:  # a CUDA-only build next to a CPU torch fails with RuntimeError
        return f"torchvision is not importable: {type(e).__name__}: {e}"
    return None


def _tv(name: str) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        if torchvision_problem() is None:
            import torchvision

            return getattr(torchvision.models, name)(weights=None)
        if name == "resnet50":
            return HandResNet50()
        raise RuntimeError(torchvision_problem())

    return make


# model -> (torchvision constructor, state_dict mapping, the blob the torchvision output equals
#           (pre-softmax; [N, 1000, 1, 1] for the nets whose classifier is a 1x1 conv))
TORCHVISION = {
    "resnet50": (_tv("resnet50"), _resnet50_state, "gpu_0/pred"),
    "vgg19": (_tv("vgg19"), _vgg19_state, "fc8"),
    "squeezenet": (_tv("squeezenet1_1"), _squeezenet_state, "pool10"),
    "densenet121": (_tv("densenet121"), _densenet121_state, "fc6"),
}


def torchvision_reference(model: str, weights: Dict[str, torch.Tensor]) -> torch.nn.Module:
    make, mapping, _ = TORCHVISION[model]
    ref = make().eval()
    sd = mapping(weights)
    mine = ref.state_dict()
    assert set(sd) == set(mine), sorted(set(sd) ^ set(mine))[:10]
    for k, v in sd.items():
        assert tuple(v.shape) == tuple(mine[k].shape), (k, tuple(v.shape), tuple(mine[k].shape))
    ref.load_state_dict(sd)
    return ref


# --------------------------------------------------------------------------------------------
# NetDef -> ONNX (for ONNX Runtime), a translation of the zoo's operator types
# --------------------------------------------------------------------------------------------


def netdef_to_onnx(net: Any, inputs: Dict[str, Sequence[int]], weights: Dict[str, torch.Tensor],
                   outputs: Sequence[str], shapes: Dict[str, List[int]]) -> bytes:
    """An ONNX model computing ``outputs`` of an NCHW Caffe2 predict net in inference mode.

    Caffe2 reuses blob names (in-place Relu, Dropout); ONNX values are single-assignment, so
    every write gets a fresh version. ``outputs`` name the blobs' final versions."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    version: Dict[str, str] = {}
    counter = [0]

    def read(blob: str) -> str:
        if blob in version:
            return version[blob]
        if blob in weights:
            name = f"w{len(inits)}"
            inits.append(numpy_helper.from_array(weights[blob].numpy(), name))
            version[blob] = name
            return name
        raise KeyError(blob)

    def write(blob: str) -> str:
        counter[0] += 1
        version[blob] = f"v{counter[0]}"
        return version[blob]

    def const(value: np.ndarray) -> str:
        name = f"c{len(inits)}"
        inits.append(numpy_helper.from_array(value, name))
        return name

    graph_inputs = []
    for blob, shape in inputs.items():
        version[blob] = f"in_{len(graph_inputs)}"
        graph_inputs.append(helper.make_tensor_value_info(version[blob], TensorProto.FLOAT, list(shape)))

    for op in net.op:
        a = arg_dict(op)
        t = op.type
        if t == "Conv":
            kernel, stride, dil, pads, _ = geometry(a, [1 << 20, 1 << 20])
            ins = [read(b) for b in op.input]
            nodes.append(helper.make_node("Conv", ins, [write(op.output[0])], kernel_shape=kernel, strides=stride,
                                          dilations=dil, pads=pads, group=a.get("group", 1)))
        elif t in ("MaxPool", "AveragePool"):
            src = read(op.input[0])
            if a.get("global_pooling"):
                nodes.append(helper.make_node("Global" + t, [src], [write(op.output[0])]))
                continue
            kernel, stride, _, pads, _ = geometry(a, [1 << 20, 1 << 20])
            kw = dict(kernel_shape=kernel, strides=stride, pads=pads)
            if a.get("legacy_pad", 0) == 3:  # Caffe's ceil mode (symmetric head pads)
                kw.update(pads=pads[:2] * 2, ceil_mode=1)
            if t == "AveragePool":
                kw["count_include_pad"] = int(a.get("count_include_pad", 0))
            nodes.append(helper.make_node(t, [src], [write(op.output[0])], **kw))
        elif t == "Relu":
            nodes.append(helper.make_node("Relu", [read(op.input[0])], [write(op.output[0])]))
        elif t == "Dropout":
            assert a.get("is_test") == 1
            nodes.append(helper.make_node("Identity", [read(op.input[0])], [write(op.output[0])]))
        elif t == "LRN":
            nodes.append(helper.make_node("LRN", [read(op.input[0])], [write(op.output[0])], size=a["size"],
                                          alpha=a.get("alpha", 0.0), beta=a.get("beta", 0.0),
                                          bias=a.get("bias", 1.0)))
        elif t == "SpatialBN":
            assert a.get("is_test") == 1
            ins = [read(b) for b in op.input]
            nodes.append(helper.make_node("BatchNormalization", ins, [write(op.output[0])],
                                          epsilon=a.get("epsilon", 1e-5)))
        elif t in ("Mul", "Add"):
            assert a.get("broadcast") == 1 and a.get("axis") == 1
            param = weights[op.input[1]].numpy().reshape(-1, 1, 1)
            nodes.append(helper.make_node(t, [read(op.input[0]), const(param)], [write(op.output[0])]))
        elif t == "Sum":
            nodes.append(helper.make_node("Sum", [read(b) for b in op.input], [write(op.output[0])]))
        elif t == "Concat":
            assert a.get("order", "NCHW") == "NCHW" and "axis" not in a
            nodes.append(helper.make_node("Concat", [read(b) for b in op.input], [write(op.output[0])], axis=1))
        elif t == "FC":
            w = weights[op.input[1]]
            wname = const(w.reshape(w.shape[0], -1).numpy()) if w.dim() != 2 else read(op.input[1])
            flat = f"flat{counter[0]}"
            nodes.append(helper.make_node("Flatten", [read(op.input[0])], [flat], axis=1))
            nodes.append(helper.make_node("Gemm", [flat, wname, read(op.input[2])], [write(op.output[0])], transB=1))
        elif t == "Softmax":
            # Caffe2 coerces to 2-D at axis 1; the zoo feeds [N, K] (or [N, K, 1, 1]).
            flat = f"flat{counter[0]}"
            nodes.append(helper.make_node("Flatten", [read(op.input[0])], [flat], axis=1))
            sm = f"sm{counter[0]}"
            nodes.append(helper.make_node("Softmax", [flat], [sm], axis=1))
            shape = const(np.array([-1] + list(shapes[op.input[0]][1:]), dtype=np.int64))
            nodes.append(helper.make_node("Reshape", [sm, shape], [write(op.output[0])]))
        else:
            raise NotImplementedError(t)

    outs = [helper.make_tensor_value_info(version[b], TensorProto.FLOAT, shapes[b]) for b in outputs]
    graph = helper.make_graph(nodes, "caffe2_net", graph_inputs, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnxruntime_reference(model_bytes: bytes, feeds: Sequence[np.ndarray]) -> List[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Plain kernels: graph rewrites such as Conv+BN folding would change rounding, not the math.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, feeds)))


# --------------------------------------------------------------------------------------------
# one model, end to end
# --------------------------------------------------------------------------------------------


def logits_blob(net: Any) -> str:
    """The blob the final Softmax reads (or the last output when there is none)."""
    last = net.op[-1]
    return last.input[0] if last.type == "Softmax" else last.output[0]


def zoo_case(model: str, batch: int = 2, seed: int = 0):
    """(net, input blob, input tensor, weights by blob name, blob shapes)."""
    net, data, shape = zoo_net(model)
    shape = [batch] + shape[1:]
    width = WIDTHS[model]
    params, shapes, roles = param_shapes(net, {data: shape}, width)
    weights = synthesize(params, roles, seed=1000 + ZOO_MODELS.index(model))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return net, data, x, weights, shapes


def scale_error(actual: torch.Tensor, expected: torch.Tensor) -> Tuple[float, float]:
    """(max abs error, max abs error / max|expected|)."""
    err = (actual.double() - expected.double()).abs().max().item()
    return err, err / max(expected.double().abs().max().item(), 1e-30)

