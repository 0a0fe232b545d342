"""torch_caffe2ops.caffe2: normalisation, activation and layout operators of vision nets.

References are NumPy, written from Caffe2's operator sources (caffe2/operators/*_op.{h,cc}):
loops or per-channel formulas that share no code with the converters. float32 tolerances are
stated per test; they are relative to an output scale of about 1.
"""
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402

from utils import add_op, fill  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "caffe2_real"
RTOL, ATOL = 1e-5, 1e-5


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def close(actual: torch.Tensor, expected: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> None:
    a = actual.detach().cpu().numpy()
    assert a.shape == expected.shape, (a.shape, expected.shape)
    np.testing.assert_allclose(a, expected, rtol=rtol, atol=atol)


def single_op_net(
    op_type: str,
    data: Dict[str, np.ndarray],
    outputs: Sequence[str] = ("y",),
    params: Dict[str, np.ndarray] = None,
    in_names: Sequence[str] = None,
    **args: Any,
) -> Tuple[Any, Any]:
    """(predict net, init net): one operator reading the fed blobs ``data`` then ``params``
    (filled by the init net), or the blobs ``in_names`` in that order."""
    params = params or {}
    init = c2.NetDef(name="init")
    for name, value in params.items():
        fill(init, name, value)
    net = c2.NetDef(name=op_type.lower())
    add_op(net, op_type, list(in_names or (list(data) + list(params))), list(outputs), **args)
    net.external_input.extend(list(data) + list(params))
    net.external_output.extend(outputs)
    return net, init


def run(op_type: str, data: Dict[str, np.ndarray], outputs: Sequence[str] = ("y",), **args: Any) -> List[torch.Tensor]:
    net, _ = single_op_net(op_type, data, outputs, **args)
    model = c2.load_net(net)
    out = model(*[t(v) for v in data.values()])
    return list(out) if isinstance(out, tuple) else [out]


def channel_axis(ndim: int, order: str) -> int:
    return ndim - 1 if order == "NHWC" else 1


def per_channel(v: np.ndarray, ndim: int, order: str) -> np.ndarray:
    """[C] laid out along the channel axis of a rank-``ndim`` array."""
    shape = [1] * ndim
    shape[channel_axis(ndim, order)] = v.size
    return v.reshape(shape)


# ------------------------------------------------------------------------------------------------
# SpatialBN
# ------------------------------------------------------------------------------------------------


def np_bn_inference(x, scale, bias, mean, var, eps, order):
    # Caffe2 fuses the statistics into alpha = scale / sqrt(var + eps), beta = bias - alpha * mean.
    alpha = scale / np.sqrt(var.astype(np.float64) + eps)
    beta = bias - alpha * mean
    n = x.ndim
    return (x * per_channel(alpha, n, order) + per_channel(beta, n, order)).astype(np.float32)


def np_bn_moments(x, order):
    """Batch mean and biased variance per channel over N and the spatial dims (math::Moments)."""
    c = channel_axis(x.ndim, order)
    axes = tuple(i for i in range(x.ndim) if i != c)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes)
    var = ((x64 - per_channel(mean, x.ndim, order)) ** 2).mean(axis=axes)
    return mean, var


def bn_params(rng, C):
    return {
        "scale": (rng.random(C) + 0.5).astype(np.float32),
        "bias": f32(rng, C),
        "mean": f32(rng, C),
        "var": (rng.random(C) + 0.2).astype(np.float32),
    }


BN_SHAPES = [
    ("NCHW", (2, 3, 7)),
    ("NCHW", (4, 3, 5, 6)),
    ("NCHW", (2, 4, 3, 2, 5)),
    ("NHWC", (2, 7, 3)),
    ("NHWC", (4, 5, 6, 3)),
    ("NHWC", (2, 3, 2, 5, 4)),
]


def bn_model(order, shape, is_test=True, seed=0, **args):
    rng = np.random.default_rng(seed)
    C = shape[channel_axis(len(shape), order)]
    p = bn_params(rng, C)
    outputs = ["y"] if is_test else ["y", "mean", "var", "saved_mean", "saved_inv_std"]
    net, init = single_op_net(
        "SpatialBN", {"x": None}, outputs, params=p, is_test=int(is_test), order=order, **args
    )
    return c2.load_net(net, init), p, rng


@pytest.mark.parametrize("order,shape", BN_SHAPES)
def test_spatial_bn_inference_matches_caffe2_formula(order, shape) -> None:
    model, p, rng = bn_model(order, shape, epsilon=1e-3)
    x = f32(rng, *shape)
    expected = np_bn_inference(x, p["scale"], p["bias"], p["mean"], p["var"], 1e-3, order)
    close(model(t(x)), expected)  # float32, outputs ~1: rtol/atol 1e-5
    # The running statistics are buffers, scale and bias trainable parameters.
    assert {n for n, _ in model.named_parameters()} == {"scale", "bias"}
    assert {n for n, _ in model.named_buffers()} == {"mean", "var"}
    # An inference net keeps its statistics however often it runs.
    np.testing.assert_array_equal(model.mean.numpy(), p["mean"])


def test_spatial_bn_defaults_and_real_net_epsilon() -> None:
    # No arguments but is_test: epsilon 1e-5, order NCHW. Zoo nets carry a float-rounded 1e-5.
    for args in ({}, {"epsilon": 9.99999974738e-06}):
        model, p, rng = bn_model("NCHW", (2, 3, 4, 4), **args)
        x = f32(rng, 2, 3, 4, 4)
        close(model(t(x)), np_bn_inference(x, p["scale"], p["bias"], p["mean"], p["var"], 1e-5, "NCHW"))


@pytest.mark.parametrize("order,shape", [BN_SHAPES[1], BN_SHAPES[4], BN_SHAPES[0], BN_SHAPES[5]])
def test_spatial_bn_train_mode_updates_running_statistics(order, shape) -> None:
    momentum, eps = 0.8, 1e-4
    model, p, rng = bn_model(order, shape, momentum=momentum, epsilon=eps)
    model.train()
    running_mean, running_var = p["mean"].astype(np.float64), p["var"].astype(np.float64)
    for step in range(2):
        x = f32(rng, *shape) * 2 + 0.5
        y = model(t(x))
        mean, var = np_bn_moments(x, order)
        # Caffe2: running = momentum * running + (1 - momentum) * batch, biased batch variance.
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
        close(model.mean, running_mean.astype(np.float32), rtol=1e-5, atol=1e-6)
        close(model.var, running_var.astype(np.float32), rtol=1e-5, atol=1e-6)
        # Y is normalised with the batch statistics.
        close(y, np_bn_inference(x, p["scale"], p["bias"], mean, var, eps, order), rtol=1e-4, atol=1e-4)
    model.eval()
    x = f32(rng, *shape)
    expected = np_bn_inference(x, p["scale"], p["bias"], running_mean, running_var, eps, order)
    close(model(t(x)), expected, rtol=1e-4, atol=1e-5)


def test_spatial_bn_default_momentum_is_0_9() -> None:
    model, p, rng = bn_model("NCHW", (3, 2, 4, 4))
    model.train()
    x = f32(rng, 3, 2, 4, 4)
    model(t(x))
    mean, var = np_bn_moments(x, "NCHW")
    close(model.mean, (0.9 * p["mean"] + 0.1 * mean).astype(np.float32), atol=1e-6)
    close(model.var, (0.9 * p["var"] + 0.1 * var).astype(np.float32), atol=1e-6)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_spatial_bn_train_mode_gradients_reach_scale_and_bias(order) -> None:
    shape = (4, 3, 5, 5) if order == "NCHW" else (4, 5, 5, 3)
    model, p, rng = bn_model(order, shape, epsilon=1e-5)
    model.train()
    x = f32(rng, *shape)
    w = f32(rng, *shape)
    xt = t(x).requires_grad_(True)
    (model(xt) * t(w)).sum().backward()
    mean, var = np_bn_moments(x, order)
    xhat = (x - per_channel(mean, x.ndim, order)) / np.sqrt(per_channel(var, x.ndim, order) + 1e-5)
    axes = tuple(i for i in range(x.ndim) if i != channel_axis(x.ndim, order))
    close(model.bias.grad, w.sum(axis=axes).astype(np.float32), rtol=1e-4, atol=1e-4)
    close(model.scale.grad, (w * xhat).sum(axis=axes).astype(np.float32), rtol=1e-4, atol=1e-4)
    # dX of batch normalisation: scale * rstd * (w - mean(w) - xhat * mean(w * xhat)).
    rstd = 1 / np.sqrt(var + 1e-5)
    wm = per_channel(w.mean(axis=axes), x.ndim, order)
    wxm = per_channel((w * xhat).mean(axis=axes), x.ndim, order)
    dx = per_channel(p["scale"] * rstd, x.ndim, order) * (w - wm - xhat * wxm)
    close(xt.grad, dx.astype(np.float32), rtol=1e-4, atol=1e-4)
    assert model.mean.grad is None and not model.mean.requires_grad


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_spatial_bn_training_net_with_five_outputs(order) -> None:
    shape = (3, 4, 4, 2)  # 4 channels in NCHW, 2 in NHWC
    rng = np.random.default_rng(5)
    C = shape[channel_axis(4, order)]
    p = bn_params(rng, C)
    net, init = single_op_net(
        "SpatialBN", {"x": None}, ["y", "mean", "var", "sm", "siv"], params=p, order=order, momentum=0.7,
    )
    model = c2.load_net(net, init)
    x = f32(rng, *shape)
    y, rm, rv, sm, siv = model(t(x))
    mean, var = np_bn_moments(x, order)
    close(y, np_bn_inference(x, p["scale"], p["bias"], mean, var, 1e-5, order), rtol=1e-4, atol=1e-4)
    close(rm, (0.7 * p["mean"] + 0.3 * mean).astype(np.float32), atol=1e-6)
    close(rv, (0.7 * p["var"] + 0.3 * var).astype(np.float32), atol=1e-6)
    close(sm, mean.astype(np.float32), atol=1e-6)
    close(siv, (1 / np.sqrt(var + 1e-5)).astype(np.float32), rtol=1e-5, atol=1e-5)
    # The running statistics are the module's buffers, updated in place.
    assert rm.data_ptr() == model.mean.data_ptr()
    model.eval()
    before = model.mean.clone()
    y, rm, rv, sm, siv = model(t(x))
    torch.testing.assert_close(rm, before)
    want = np_bn_inference(x, p["scale"], p["bias"], rm.detach().numpy(), rv.detach().numpy(), 1e-5, order)
    close(y, want, rtol=1e-4, atol=1e-4)


def test_spatial_bn_num_batches_uses_summed_statistics() -> None:
    rng = np.random.default_rng(6)
    N, C, H, W, nb = 2, 3, 2, 2, 3
    p = bn_params(rng, C)
    x = f32(rng, N, C, H, W)
    mean_sum = f32(rng, C) * 10
    var_sum = (rng.random(C) * 50 + 20).astype(np.float32)
    net, init = single_op_net(
        "SpatialBN", {"x": x, "ms": mean_sum, "vs": var_sum}, ["y", "mean", "var", "sm", "siv"], params=p,
        in_names=["x", "scale", "bias", "mean", "var", "ms", "vs"], num_batches=nb,
    )
    model = c2.load_net(net, init)
    y, rm, rv, sm, siv = model(t(x), t(mean_sum), t(var_sum))
    m = mean_sum.astype(np.float64) / (nb * N * H * W)
    v = var_sum.astype(np.float64) / (nb * N * H * W) - m * m
    close(y, np_bn_inference(x, p["scale"], p["bias"], m, v, 1e-5, "NCHW"), rtol=1e-4, atol=1e-4)
    close(rv, (0.9 * p["var"] + 0.1 * v).astype(np.float32), atol=1e-6)


def test_spatial_bn_single_value_per_channel_in_training() -> None:
    # N * HxW == 1: Caffe2 computes variance 0 (torch's BatchNorm refuses this in training).
    model, p, _ = bn_model("NCHW", (1, 3, 1, 1))
    model.train()
    x = np.array([1.0, -2.0, 3.0], np.float32).reshape(1, 3, 1, 1)
    # Y = alpha * x + beta with alpha = scale / sqrt(eps) ~ 300 * scale: cancellation costs digits.
    close(model(t(x)), p["bias"].reshape(1, 3, 1, 1), rtol=0, atol=1e-4)
    close(model.mean, (0.9 * p["mean"] + 0.1 * x.reshape(3)).astype(np.float32), atol=1e-6)
    close(model.var, (0.9 * p["var"]).astype(np.float32), atol=1e-6)


def test_spatial_bn_rejects_what_caffe2_rejects() -> None:
    rng = np.random.default_rng(0)
    p = bn_params(rng, 3)
    bad = [
        ({"is_test": 0}, ["y"], "5 outputs"),
        ({"is_test": 1}, ["y", "mean", "var", "a", "b"], "1 output"),
        ({"is_test": 1, "order": "CHWN"}, ["y"], "order"),
        ({"is_test": 1, "epsilon": 0.0}, ["y"], "epsilon"),
        ({"is_test": 1, "momentum": 1.5}, ["y"], "momentum"),
        ({"is_test": 0}, ["y", "m2", "v2", "a", "b"], "same blobs"),
    ]
    for args, outputs, message in bad:
        net, init = single_op_net("SpatialBN", {"x": None}, outputs, params=p, **args)
        with pytest.raises(c2.NetImportError, match=message):
            c2.load_net(net, init)


def test_spatial_bn_script_compile_export(tmp_path: Path) -> None:
    # A Conv-free vision net: SpatialBN -> Relu -> SpatialBN (NHWC) via NCHW2NHWC.
    rng = np.random.default_rng(9)
    C = 4
    p1 = {f"bn1_{k}": v for k, v in bn_params(rng, C).items()}
    p2 = {f"bn2_{k}": v for k, v in bn_params(rng, C).items()}
    init = c2.NetDef(name="init")
    for k, v in {**p1, **p2}.items():
        fill(init, k, v)
    net = c2.NetDef(name="bn_net")
    add_op(net, "SpatialBN", ["x", "bn1_scale", "bn1_bias", "bn1_mean", "bn1_var"], ["h"], is_test=1, order="NCHW")
    add_op(net, "Relu", ["h"], ["h"])
    add_op(net, "NCHW2NHWC", ["h"], ["h_nhwc"])
    add_op(net, "SpatialBN", ["h_nhwc", "bn2_scale", "bn2_bias", "bn2_mean", "bn2_var"], ["y"], is_test=1,
           order="NHWC", epsilon=1e-3)
    net.external_input.extend(["x"] + list(p1) + list(p2))
    net.external_output.append("y")
    model = c2.load_net(net, init)
    x = f32(rng, 3, C, 5, 5)
    h = np.maximum(np_bn_inference(x, *[p1[f"bn1_{k}"] for k in ("scale", "bias", "mean", "var")], 1e-5, "NCHW"), 0)
    expected = np_bn_inference(
        h.transpose(0, 2, 3, 1), *[p2[f"bn2_{k}"] for k in ("scale", "bias", "mean", "var")], 1e-3, "NHWC"
    )
    close(model(t(x)), expected, rtol=1e-5, atol=1e-5)
    model.eval()
    close(model(t(x)), expected, rtol=1e-5, atol=1e-5)

    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    close(compiled(t(x)), expected)

    batch = torch.export.Dim("batch", min=2)
    ep = torch.export.export(model, (t(x),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, tmp_path / "bn.pt2")
    loaded = torch.export.load(tmp_path / "bn.pt2").module()
    close(loaded(t(x)), expected)
    x7 = f32(rng, 7, C, 5, 5)
    torch.testing.assert_close(loaded(t(x7)), model(t(x7)))

    scripted = torch.jit.script(model)
    close(scripted(t(x)), expected)
    scripted.save(str(tmp_path / "bn_scripted.pt"))
    close(torch.jit.load(str(tmp_path / "bn_scripted.pt"))(t(x)), expected)


def test_spatial_bn_train_mode_under_compile_export_and_script() -> None:
    shape = (4, 3, 3, 3)
    x = [f32(np.random.default_rng(s), *shape) for s in range(2)]
    eager, p, _ = bn_model("NCHW", shape)
    eager.train()
    want = [eager(t(v)).detach() for v in x]

    compiled_model, _, _ = bn_model("NCHW", shape)
    compiled_model.train()
    compiled = torch.compile(compiled_model, backend="aot_eager", fullgraph=True)
    for v, w in zip(x, want):
        torch.testing.assert_close(compiled(t(v)), w)
    torch.testing.assert_close(compiled_model.var, eager.var)

    exported_model, _, _ = bn_model("NCHW", shape)
    exported_model.train()
    ep = torch.export.export(exported_model, (t(x[0]),))
    m = ep.module()
    for v, w in zip(x, want):
        torch.testing.assert_close(m(t(v)), w)
    torch.testing.assert_close(m.mean, eager.mean)
    torch.testing.assert_close(m.var, eager.var)

    scripted_model, _, _ = bn_model("NCHW", shape)
    scripted = torch.jit.script(scripted_model)
    scripted.train()
    for v, w in zip(x, want):
        torch.testing.assert_close(scripted(t(v)), w)
    torch.testing.assert_close(scripted.var, eager.var)


def test_spatial_bn_zoo_arguments_are_accepted_strictly() -> None:
    # What zoo nets carry on SpatialBN; strict=True rejects only arguments Caffe2 does not read.
    rng = np.random.default_rng(0)
    net, init = single_op_net("SpatialBN", {"x": None}, ["y"], params=bn_params(rng, 2), is_test=1,
                              epsilon=1e-5, order="NCHW", momentum=0.9)
    c2.load_net(net, init, strict=True)
    net, init = single_op_net("SpatialBN", {"x": None}, ["y"], params=bn_params(rng, 2), is_test=1, use_cudnn=1)
    with pytest.raises(c2.UnknownArgumentError, match="use_cudnn"):
        c2.load_net(net, init, strict=True)


# ------------------------------------------------------------------------------------------------
# AffineChannel, LRN, InstanceNorm, GroupNorm
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order,shape", [("NCHW", (2, 3, 4, 5)), ("NHWC", (2, 4, 5, 3)), ("NCHW", (2, 3, 7)),
                                         ("NHWC", (2, 2, 3, 4, 3))])
@pytest.mark.parametrize("learnable", [False, True])
def test_affine_channel(order, shape, learnable) -> None:
    rng = np.random.default_rng(1)
    C = shape[channel_axis(len(shape), order)]
    p = {"scale": f32(rng, C), "bias": f32(rng, C)}
    net, init = single_op_net("AffineChannel", {"x": None}, ["y"], params=p, order=order, is_learnable=int(learnable))
    model = c2.load_net(net, init)
    x = f32(rng, *shape)
    xt = t(x).requires_grad_(True)
    y = model(xt)
    n = x.ndim
    close(y, x * per_channel(p["scale"], n, order) + per_channel(p["bias"], n, order), rtol=1e-6, atol=1e-6)
    y.sum().backward()
    close(xt.grad, np.broadcast_to(per_channel(p["scale"], n, order), shape).astype(np.float32), rtol=1e-6)
    # Caffe2 computes dscale/dbias only with is_learnable (Detectron's frozen BN has it off).
    assert (model.scale.grad is not None) == learnable


def np_lrn(x, size, alpha, beta, bias, order):
    """Caffe2's LRN with a window of `size` channels starting (size-1)/2 before c."""
    xc = np.moveaxis(x, channel_axis(x.ndim, order), -1).astype(np.float64)
    C = xc.shape[-1]
    pre = (size - 1) // 2
    scale = np.full(xc.shape, bias)
    for c in range(C):
        for c2_ in range(c - pre, c - pre + size):
            if 0 <= c2_ < C:
                scale[..., c] += alpha / size * xc[..., c2_] ** 2
    y = xc * scale ** -beta
    back = lambda a: np.moveaxis(a, -1, channel_axis(x.ndim, order)).astype(np.float32)  # noqa: E731
    return back(y), back(scale)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("size,alpha,beta,bias", [(5, 1e-4, 0.75, 1.0), (3, 0.5, 0.5, 2.0), (1, 0.3, 1.0, 1.0),
                                                  (9, 2.0, 0.75, 1.0)])
def test_lrn(order, size, alpha, beta, bias) -> None:
    rng = np.random.default_rng(2)
    shape = (2, 7, 3, 4) if order == "NCHW" else (2, 3, 4, 7)
    x = f32(rng, *shape) * 3
    y, s = run("LRN", {"x": x}, ["y", "y_scale"], size=size, alpha=alpha, beta=beta, bias=bias, order=order)
    want_y, want_s = np_lrn(x, size, alpha, beta, bias, order)
    close(y, want_y, rtol=1e-5, atol=1e-6)
    close(s, want_s, rtol=1e-5, atol=1e-6)
    (y1,) = run("LRN", {"x": x}, size=size, alpha=alpha, beta=beta, bias=bias, order=order)
    close(y1, want_y, rtol=1e-5, atol=1e-6)
    if order == "NCHW":
        # For odd sizes this is exactly torch's local_response_norm (it also divides alpha by size).
        torch.testing.assert_close(y1, torch.nn.functional.local_response_norm(t(x), size, alpha, beta, bias))


def test_lrn_defaults_and_rejections() -> None:
    x = f32(np.random.default_rng(3), 1, 3, 2, 2)
    # bias defaults to 1; alpha and beta to 0 (Y = X).
    (y,) = run("LRN", {"x": x}, size=3)
    close(y, x)
    for args in ({}, {"size": 4}, {"size": -3}):
        net, _ = single_op_net("LRN", {"x": x}, **args)
        with pytest.raises(c2.NetImportError, match="size"):
            c2.load_net(net)


def np_group_norm(x, gamma, beta, G, eps, order):
    xc = np.moveaxis(x, channel_axis(x.ndim, order), 1).astype(np.float64)
    N, C = xc.shape[:2]
    g = xc.reshape(N, G, -1)
    mean = g.mean(axis=2)
    var = ((g - mean[:, :, None]) ** 2).mean(axis=2)
    rstd = 1 / np.sqrt(var + eps)
    y = ((g - mean[:, :, None]) * rstd[:, :, None]).reshape(xc.shape)
    y = y * gamma.reshape([1, C] + [1] * (x.ndim - 2)) + beta.reshape([1, C] + [1] * (x.ndim - 2))
    return np.moveaxis(y, 1, channel_axis(x.ndim, order)).astype(np.float32), mean, rstd


@pytest.mark.parametrize("order,shape", [("NCHW", (2, 6, 3, 4)), ("NHWC", (2, 3, 4, 6)), ("NCHW", (3, 6, 5)),
                                         ("NHWC", (2, 2, 3, 2, 6))])
def test_instance_norm(order, shape) -> None:
    rng = np.random.default_rng(4)
    C = shape[channel_axis(len(shape), order)]
    p = {"scale": f32(rng, C), "bias": f32(rng, C)}
    x = f32(rng, *shape) * 2 + 1
    net, init = single_op_net("InstanceNorm", {"x": None}, ["y", "mean", "inv_stdev"], params=p, order=order,
                              epsilon=1e-3)
    y, mean, rstd = c2.load_net(net, init)(t(x))
    # Instance norm is group norm with one channel per group.
    want, want_mean, want_rstd = np_group_norm(x, p["scale"], p["bias"], C, 1e-3, order)
    close(y, want, rtol=1e-4, atol=1e-5)
    close(mean, want_mean.astype(np.float32), rtol=1e-5, atol=1e-6)
    close(rstd, want_rstd.astype(np.float32), rtol=1e-4, atol=1e-5)
    net, init = single_op_net("InstanceNorm", {"x": None}, ["y"], params=p, order=order)
    close(c2.load_net(net, init)(t(x)), np_group_norm(x, p["scale"], p["bias"], C, 1e-5, order)[0],
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("order,shape,group", [("NCHW", (2, 64, 2, 3), None), ("NHWC", (2, 3, 2, 64), None),
                                               ("NCHW", (2, 6, 3, 4), 3), ("NHWC", (2, 3, 4, 6), 2),
                                               ("NCHW", (2, 4, 5), 2)])
def test_group_norm(order, shape, group) -> None:
    rng = np.random.default_rng(5)
    C = shape[channel_axis(len(shape), order)]
    p = {"gamma": f32(rng, C), "beta": f32(rng, C)}
    x = f32(rng, *shape) * 2 + 1
    args = {"order": order} if group is None else {"order": order, "group": group}
    G = 32 if group is None else group
    want, want_mean, want_rstd = np_group_norm(x, p["gamma"], p["beta"], G, 1e-5, order)
    net, init = single_op_net("GroupNorm", {"x": None}, ["y"], params=p, **args)
    close(c2.load_net(net, init)(t(x)), want, rtol=1e-4, atol=1e-5)
    net, init = single_op_net("GroupNorm", {"x": None}, ["y", "mu", "rsig"], params=p, is_test=0, **args)
    y, mu, rsig = c2.load_net(net, init)(t(x))
    close(y, want, rtol=1e-4, atol=1e-5)
    close(mu, want_mean.astype(np.float32), rtol=1e-5, atol=1e-6)
    close(rsig, want_rstd.astype(np.float32), rtol=1e-4, atol=1e-5)


def test_group_norm_training_needs_statistics_outputs() -> None:
    net, init = single_op_net("GroupNorm", {"x": None}, ["y"], params={"g": np.ones(4, np.float32),
                                                                       "b": np.zeros(4, np.float32)}, is_test=0)
    with pytest.raises(c2.NetImportError, match="3 outputs"):
        c2.load_net(net, init)


# ------------------------------------------------------------------------------------------------
# activations
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order,shape", [("NCHW", (2, 3, 4, 4)), ("NHWC", (2, 4, 4, 3)), ("NCHW", (5, 3)),
                                         ("NHWC", (2, 5, 3))])
@pytest.mark.parametrize("shared", [False, True])
def test_prelu(order, shape, shared) -> None:
    rng = np.random.default_rng(6)
    C = shape[channel_axis(len(shape), order)]
    x = f32(rng, *shape)
    w = (rng.random(1 if shared else C) * 0.5).astype(np.float32)
    (y,) = run("PRelu", {"x": x, "w": w}, order=order)
    slope = w.reshape([1] * x.ndim) if shared else per_channel(w, x.ndim, order)
    # Caffe2: Y = max(X, 0) + min(X, 0) * w
    close(y, np.maximum(x, 0) + np.minimum(x, 0) * slope, rtol=1e-6, atol=1e-7)


def test_prelu_slope_count_must_match_channels() -> None:
    net, _ = single_op_net("PRelu", {"x": None, "w": None})
    model = c2.load_net(net)
    with pytest.raises(RuntimeError, match="2 slopes for 3 channels"):
        model(torch.zeros(1, 3, 2, 2), torch.ones(2))


def test_published_prelu_net_from_glow_fixtures() -> None:
    model = c2.load_net(FIXTURES / "glow_prelu.pbtxt", FIXTURES / "glow_empty_init_net.pbtxt")
    x = np.array([-2.0, -0.5, 0, 1, 2, 3, 4, 5, 6, -1.5, -2.5, 7, 8, 9, 10, 11, 12, 13], np.float32).reshape(1, 2, 3, 3)
    y = model(t(x), t(np.array([0.1, 0.2], np.float32)))
    want = np.array([-0.2, -0.05, 0, 1, 2, 3, 4, 5, 6, -0.3, -0.5, 7, 8, 9, 10, 11, 12, 13], np.float32)
    close(y, want.reshape(1, 2, 3, 3), rtol=1e-6, atol=1e-7)


def test_elementwise_activations() -> None:
    rng = np.random.default_rng(7)
    x = f32(rng, 3, 4, 5) * 4
    x[0, 0, :3] = [0.0, -0.0, 50.0]
    cases = [
        ("LeakyRelu", {}, np.where(x >= 0, x, 0.01 * x)),
        ("LeakyRelu", {"alpha": 0.2}, np.where(x >= 0, x, 0.2 * x)),
        ("Elu", {}, np.where(x < 0, np.expm1(x), x)),
        ("Elu", {"alpha": 0.5}, np.where(x < 0, 0.5 * np.expm1(x), x)),
        ("Selu", {}, np.where(x > 0, 1.0507009873554805 * x, 1.0507009873554805 * 1.6732632423543772 * np.expm1(x))),
        ("Selu", {"alpha": 1.5, "scale": 1.2}, np.where(x > 0, 1.2 * x, 1.2 * 1.5 * np.expm1(x))),
        ("Softplus", {}, np.log1p(np.exp(x.astype(np.float64)))),
        ("ReluN", {}, np.clip(x, 0, 6)),
        ("ReluN", {"n": 2.5}, np.clip(x, 0, 2.5)),
    ]
    for op_type, args, want in cases:
        (y,) = run(op_type, {"x": x}, **args)
        close(y, want.astype(np.float32), rtol=1e-5, atol=1e-6)


def test_activation_argument_checks() -> None:
    for op_type, args, message in [("Selu", {"scale": 0.9}, "scale"), ("ReluN", {"n": 0.0}, "'n'")]:
        net, _ = single_op_net(op_type, {"x": None}, **args)
        with pytest.raises(c2.NetImportError, match=message):
            c2.load_net(net)


def test_published_softplus_net_from_glow_fixtures() -> None:
    model = c2.load_net(FIXTURES / "glow_softplus.pbtxt", FIXTURES / "glow_empty_init_net.pbtxt")
    x = np.random.default_rng(8).uniform(-3, 3, (20, 50)).astype(np.float32)
    close(model(t(x)), np.log(np.exp(x) + 1), rtol=1e-5, atol=1e-6)  # Glow checks 1e-3


def test_elementwise_linear() -> None:
    rng = np.random.default_rng(9)
    x = f32(rng, 2, 3, 4)
    for axis, D in [(1, 12), (2, 4), (-1, 4), (0, 24)]:
        a, b = f32(rng, D), f32(rng, D)
        args = {} if axis == 1 else {"axis": axis}
        (y,) = run("ElementwiseLinear", {"x": x, "a": a, "b": b}, **args)
        lead = x.size // D
        want = np.empty((lead, D), np.float32)
        x2 = x.reshape(lead, D)
        for n in range(lead):
            for d in range(D):
                want[n, d] = x2[n, d] * a[d] + b[d]
        close(y, want.reshape(x.shape), rtol=1e-6, atol=1e-6)


def test_published_elementwise_linear_nets_from_glow_fixtures() -> None:
    rng = np.random.default_rng(10)
    x, w, b = f32(rng, 5, 10), f32(rng, 10), f32(rng, 10)
    model = c2.load_net(FIXTURES / "glow_elementwise_linear_default_net.pbtxt", FIXTURES / "glow_empty_init_net.pbtxt")
    close(model(t(x), t(w), t(b)), x * w + b, rtol=1e-6, atol=1e-6)
    # Glow reads axis=0 as "w, b along dim 0" of X [10, 5]. Caffe2 flattens X at axis 0 to
    # [1, 50] and needs a and b of size 50: it rejects w, b of size 10, and so do we.
    model = c2.load_net(FIXTURES / "glow_elementwise_linear_net.pbtxt", FIXTURES / "glow_empty_init_net.pbtxt")
    x = f32(rng, 10, 5)
    with pytest.raises(RuntimeError, match="size 50"):
        model(t(x), t(w), t(b))
    w50, b50 = f32(rng, 50), f32(rng, 50)
    close(model(t(x), t(w50), t(b50)), (x.reshape(50) * w50 + b50).reshape(10, 5), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# layout
# ------------------------------------------------------------------------------------------------


def np_channel_shuffle(x, G, order):
    xc = np.moveaxis(x, channel_axis(x.ndim, order), -1)
    C = xc.shape[-1]
    K = C // G
    y = np.empty_like(xc)
    for g in range(G):
        for k in range(K):
            y[..., k * G + g] = xc[..., g * K + k]
    return np.moveaxis(y, -1, channel_axis(x.ndim, order))


@pytest.mark.parametrize("order,shape", [("NCHW", (2, 6, 3, 4)), ("NHWC", (2, 3, 4, 6)), ("NCHW", (2, 12, 5)),
                                         ("NHWC", (1, 2, 2, 3, 12))])
def test_channel_shuffle(order, shape) -> None:
    x = f32(np.random.default_rng(11), *shape)
    C = shape[channel_axis(len(shape), order)]
    for G in [1, 2, 3, C]:
        (y,) = run("ChannelShuffle", {"x": x}, group=G, order=order)
        np.testing.assert_array_equal(y.numpy(), np_channel_shuffle(x, G, order))
    net, _ = single_op_net("ChannelShuffle", {"x": None}, group=5, order=order)
    with pytest.raises(RuntimeError, match="do not split into 5 groups"):
        c2.load_net(net)(t(x))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (2, 3, 4, 5, 6)])
def test_order_switch(shape) -> None:
    x = f32(np.random.default_rng(12), *shape)
    (y,) = run("NCHW2NHWC", {"x": x})
    perm = [0] + list(range(2, x.ndim)) + [1]
    np.testing.assert_array_equal(y.numpy(), x.transpose(perm))
    (z,) = run("NHWC2NCHW", {"x": y.numpy()})
    np.testing.assert_array_equal(z.numpy(), x)
    net, _ = single_op_net("NCHW2NHWC", {"x": None})
    with pytest.raises(RuntimeError, match="rank >= 3"):
        c2.load_net(net)(torch.zeros(2, 3))


def test_published_nchw2nhwc_net_from_glow_fixtures() -> None:
    # The net reads blob "inputs" without listing it as an external input.
    model = c2.load_net(FIXTURES / "glow_NCHW2NHWC_predict_net.pbtxt", inputs=["inputs"])
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    y = model(t(x))
    assert tuple(y.shape) == (1, 3, 4, 2)
    np.testing.assert_array_equal(y.numpy(), x.transpose(0, 2, 3, 1))


def np_resize_nearest(x, hs, ws, order):
    """Caffe2's loop: sizes and source indices in float32 arithmetic."""
    xc = x if order == "NCHW" else x.transpose(0, 3, 1, 2)
    N, C, H, W = xc.shape
    hs32, ws32 = np.float32(hs), np.float32(ws)
    out_h, out_w = int(np.float32(H) * hs32), int(np.float32(W) * ws32)
    y = np.empty((N, C, out_h, out_w), x.dtype)
    for oy in range(out_h):
        iy = min(int(np.float32(oy) / hs32), H - 1)
        for ox in range(out_w):
            ix = min(int(np.float32(ox) / ws32), W - 1)
            y[:, :, oy, ox] = xc[:, :, iy, ix]
    return y if order == "NCHW" else y.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("hs,ws", [(2.0, 2.0), (2.0, 1.5), (0.7, 1.3), (3.0, 1.0), (0.5, 0.5), (1.7, 2.9)])
def test_resize_nearest(order, hs, ws) -> None:
    shape = (2, 3, 10, 7) if order == "NCHW" else (2, 10, 7, 3)
    x = f32(np.random.default_rng(13), *shape)
    (y,) = run("ResizeNearest", {"x": x}, height_scale=hs, width_scale=ws, order=order)
    np.testing.assert_array_equal(y.numpy(), np_resize_nearest(x, hs, ws, order))
    # The same scales from the optional second input, which overrides the arguments.
    scales = np.array([hs, ws], np.float32)
    (y2,) = run("ResizeNearest", {"x": x, "scales": scales}, height_scale=9.0, order=order)
    np.testing.assert_array_equal(y2.numpy(), np_resize_nearest(x, hs, ws, order))


def test_resize_nearest_float32_size_rounding_and_defaults() -> None:
    # 10 * 0.7f is 6.9999998 in double but rounds to 7.0 in float32: Caffe2's output has 7 rows.
    x = f32(np.random.default_rng(14), 1, 1, 10, 3)
    (y,) = run("ResizeNearest", {"x": x}, height_scale=0.7)
    assert tuple(y.shape) == (1, 1, 7, 3)
    np.testing.assert_array_equal(y.numpy(), np_resize_nearest(x, 0.7, 1.0, "NCHW"))
    # torch's "nearest" picks floor(out * in / out_size) instead of int(out / scale): with 5
    # rows and scale 1.3 Caffe2 reads rows 0 0 1 2 3 3, torch 0 0 1 2 3 4.
    x5 = f32(np.random.default_rng(15), 1, 1, 5, 2)
    (y5,) = run("ResizeNearest", {"x": x5}, height_scale=1.3)
    np.testing.assert_array_equal(y5.numpy(), x5[:, :, [0, 0, 1, 2, 3, 3]])
    np.testing.assert_array_equal(y5.numpy(), np_resize_nearest(x5, 1.3, 1.0, "NCHW"))
    (same,) = run("ResizeNearest", {"x": x})  # both scales default to 1
    np.testing.assert_array_equal(same.numpy(), x)


def test_published_resize_nearest_net_from_glow_fixtures() -> None:
    model = c2.load_net(FIXTURES / "glow_resize_nearest_op_net.pbtxt", FIXTURES / "glow_empty_init_net.pbtxt")
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    y = model(t(x))
    assert tuple(y.shape) == (1, 4, 3, 1)  # NHWC, height_scale 2.0, width_scale 1.5
    np.testing.assert_array_equal(y.numpy(), np_resize_nearest(x, 2.0, 1.5, "NHWC"))


# ------------------------------------------------------------------------------------------------
# core operators with vision shapes and `order`
# ------------------------------------------------------------------------------------------------


def test_softmax_on_images_normalises_all_trailing_dims() -> None:
    x = f32(np.random.default_rng(15), 2, 3, 4, 5)
    for axis in (1, 2, 3, -1):
        args = {} if axis == 1 else {"axis": axis}
        (y,) = run("Softmax", {"x": x}, **args)
        ax = axis % x.ndim
        flat = x.reshape(int(np.prod(x.shape[:ax])), -1).astype(np.float64)
        e = np.exp(flat - flat.max(axis=1, keepdims=True))
        close(y, (e / e.sum(axis=1, keepdims=True)).reshape(x.shape).astype(np.float32), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("order,axis", [("NCHW", 1), ("NHWC", 3)])
def test_concat_and_split_follow_order(order, axis) -> None:
    rng = np.random.default_rng(16)
    a, b = f32(rng, 2, 3, 4, 5), f32(rng, 2, 3, 4, 5)
    y, info = run("Concat", {"a": a, "b": b}, ["y", "info"], order=order)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([a, b], axis=axis))
    np.testing.assert_array_equal(info.numpy(), [a.shape[axis], b.shape[axis]])
    p, q = run("Split", {"y": y.numpy()}, ["p", "q"], order=order)
    np.testing.assert_array_equal(p.numpy(), a)
    np.testing.assert_array_equal(q.numpy(), b)


# ------------------------------------------------------------------------------------------------
# a small vision net through script / compile / export
# ------------------------------------------------------------------------------------------------


def test_vision_block_script_compile_export(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    C = 8
    params = {
        "ac_s": f32(rng, C), "ac_b": f32(rng, C), "slope": (rng.random(C) * 0.3).astype(np.float32),
        "gn_g": f32(rng, C), "gn_b": f32(rng, C), "in_s": f32(rng, C), "in_b": f32(rng, C),
    }
    init = c2.NetDef(name="init")
    for k, v in params.items():
        fill(init, k, v)
    net = c2.NetDef(name="block")
    add_op(net, "AffineChannel", ["x", "ac_s", "ac_b"], ["h1"])
    add_op(net, "PRelu", ["h1", "slope"], ["h2"])
    add_op(net, "LRN", ["h2"], ["h3"], size=5, alpha=1e-2, beta=0.75, bias=1.0)
    add_op(net, "ChannelShuffle", ["h3"], ["h4"], group=2)
    add_op(net, "GroupNorm", ["h4", "gn_g", "gn_b"], ["h5"], group=4)
    add_op(net, "ResizeNearest", ["h5"], ["h6"], height_scale=2.0, width_scale=1.5)
    add_op(net, "NCHW2NHWC", ["h6"], ["h7"])
    add_op(net, "InstanceNorm", ["h7", "in_s", "in_b"], ["h8"], order="NHWC")
    add_op(net, "LeakyRelu", ["h8"], ["h9"], alpha=0.1)
    add_op(net, "NHWC2NCHW", ["h9"], ["y"])
    net.external_input.extend(["x"] + list(params))
    net.external_output.append("y")
    model = c2.load_net(net, init, strict=True)
    x = f32(rng, 2, C, 4, 6)

    p = params
    h = x * per_channel(p["ac_s"], 4, "NCHW") + per_channel(p["ac_b"], 4, "NCHW")
    h = np.maximum(h, 0) + np.minimum(h, 0) * per_channel(p["slope"], 4, "NCHW")
    h = np_lrn(h, 5, 1e-2, 0.75, 1.0, "NCHW")[0]
    h = np_channel_shuffle(h, 2, "NCHW")
    h = np_group_norm(h, p["gn_g"], p["gn_b"], 4, 1e-5, "NCHW")[0]
    h = np_resize_nearest(h, 2.0, 1.5, "NCHW").transpose(0, 2, 3, 1)
    h = np_group_norm(h, p["in_s"], p["in_b"], C, 1e-5, "NHWC")[0]
    want = np.where(h >= 0, h, 0.1 * h).transpose(0, 3, 1, 2)
    close(model(t(x)), want, rtol=1e-4, atol=1e-4)

    expected = model(t(x)).detach()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(t(x)), expected)
    batch = torch.export.Dim("batch", min=2)
    ep = torch.export.export(model, (t(x),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, tmp_path / "block.pt2")
    loaded = torch.export.load(tmp_path / "block.pt2").module()
    torch.testing.assert_close(loaded(t(x)), expected)
    x5 = f32(rng, 5, C, 4, 6)
    torch.testing.assert_close(loaded(t(x5)), model(t(x5)).detach(), rtol=1e-5, atol=1e-5)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(t(x)), expected)
    # Fine-tuning: gradients reach the trainable parameters, but not AffineChannel's
    # (is_learnable defaults to 0, as Caffe2 computes no gradient for them).
    model(t(x)).square().sum().backward()
    for name in ("slope", "gn_g", "in_b"):
        assert getattr(model, name).grad is not None, name
    assert model.ac_s.grad is None
