"""A tour of torch_caffe2ops: every operator family on small inputs, errors, torch.compile,
torch.export, a TorchScript round trip, importing a Caffe2 NetDef, and a few dozen training steps
of the DLRM-style ranking example (examples/ranking/).

    bash scripts/demo.sh             # builds first if needed
    .venv/bin/python examples/demo.py
"""
import argparse
import os
import sys
import tempfile
import time

import torch

import torch_caffe2ops
from torch_caffe2ops import nn, ops

HERE = os.path.dirname(os.path.abspath(__file__))


def section(title):
    print(f"\n== {title}")


def show(title, value):
    text = str(value)
    print(f"{title}:" + ("\n  " + text.replace("\n", "\n  ") if "\n" in text else " " + text))


def batch_family():
    section("batch family")
    X = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    Y = ops.batch_permutation(X, torch.tensor([2, 0, 1]))
    Y.backward(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    show("batch_permutation(X, [2, 0, 1])", Y.detach())
    show("  gradient for dY rows (1, 2, 3)", X.grad)
    data = torch.tensor([[1.0, 1.2, 2.4, 4.5], [2.3, 3.4, 3.6, 2.3], [4.5, 5.7, 1.2, 4.5]])
    show("batch_gather(data, [0, 2])", ops.batch_gather(data, torch.tensor([0, 2])))
    lengths, idx = torch.tensor([2, 3, 1]), torch.tensor([0, 1, 2, 3, 4, 5])
    dense = ops.batch_sparse_to_dense(lengths, idx, torch.tensor([6.0, 7, 8, 9, 10, 11]), dense_last_dim=6)
    show("batch_sparse_to_dense(lengths=[2, 3, 1], ...)", dense)
    show("batch_dense_to_sparse (back again)", ops.batch_dense_to_sparse(lengths, idx, dense))
    y = ops.batch_mat_mul(torch.ones(3, 5, 10), torch.ones(2, 3, 10, 6), broadcast=True)
    show("batch_mat_mul([3,5,10] x [2,3,10,6], broadcast=True) shape", tuple(y.shape))
    mean, second = ops.batch_moments(torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]]))
    show("batch_moments: mean, E[x^2] (not the variance)", (mean, second))
    show("batch_box_cox([[1, 2]], lambda1=[0, .5], lambda2=[0, 1])",
         ops.batch_box_cox(torch.tensor([[1.0, 2.0]]), torch.tensor([0.0, 0.5]), torch.tensor([0.0, 1.0])))
    feats = torch.tensor([[1.42, 2.07, 3.19], [4.57, 2.30, 0.84]])
    show("batch_bucketize(columns [0, 2], borders [0.5, 1] and [1.5, 2.5, 3.5]) -> int32",
         ops.batch_bucketize(feats, torch.tensor([0, 2]), torch.tensor([0.5, 1.0, 1.5, 2.5, 3.5]),
                             torch.tensor([2, 3])))
    show("batch_bucket_one_hot", ops.batch_bucket_one_hot(torch.tensor([[2.0, 3.0], [4.0, 1.0]]), torch.tensor([2, 3]),
                                                          torch.tensor([0.1, 2.5, 1.0, 3.1, 4.5])))
    show("concat_batch_mat_mul_batch_gather: <x1,x1>, <x1,x2>, <x2,x2>",
         ops.concat_batch_mat_mul_batch_gather(torch.tensor([0, 1, 3]),
                                               [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]))


def concat_split_family():
    section("concat / split family (default axis 1; concat returns (output, split_info))")
    a, b = torch.ones(2, 3), torch.zeros(2, 1)
    out, split_info = ops.concat([a, b])
    show("concat([2x3, 2x1]) shape, split_info", (tuple(out.shape), split_info))
    show("split(arange(9), split=[3, 2, 4], axis=0)", ops.split(torch.arange(9), split=[3, 2, 4], axis=0))
    show("split_by_lengths(arange(6), lengths=[1, 2, 1, 2], 2 pieces, axis=0)",
         ops.split_by_lengths(torch.arange(6.0), torch.tensor([1, 2, 1, 2]), 2, axis=0))


def dropout_family():
    section("dropout family (returns (Y, mask); nn.Dropout takes ratio= or p=)")
    torch.manual_seed(0)
    Y, mask = ops.dropout(torch.arange(1.0, 7.0), ratio=0.5)
    show("dropout([1..6], ratio=0.5): Y, mask", (Y, mask))
    layer = nn.Dropout(p=0.5).eval()
    show("nn.Dropout(p=0.5) in eval mode is a copy", layer(torch.arange(1.0, 4.0)))


def sparse_normalize_family():
    section("sparse normalize family (the MaxNorm regularizer)")
    table = torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    ops.sparse_normalize_(table, torch.tensor([0, 1]))
    show("sparse_normalize_(rows [0, 1], norm=1): row 0 shrunk, row 1 below 1, row 2 not listed", table)


def margin_rank_family():
    section("margin rank family (elementwise, margin 1.0 by default)")
    loss = ops.margin_ranking_criterion(torch.tensor([1.0, 0.2]), torch.tensor([0.5, 1.0]), torch.tensor([1, -1]))
    show("margin_ranking_criterion(x1=[1, .2], x2=[.5, 1], y=[1, -1])", loss)
    show("nn.MarginRankingCriterion(reduction='mean')",
         nn.MarginRankingCriterion(reduction="mean")(torch.tensor([1.0, 0.2]), torch.tensor([0.5, 1.0]),
                                                     torch.tensor([1, -1])).item())


def errors():
    section("errors: raised, never an out-of-bounds read")
    try:
        ops.batch_gather(torch.zeros(3, 4), torch.tensor([0, 7]))
    except RuntimeError as e:
        show("batch_gather with index 7 of 4", str(e).splitlines()[0])
    try:
        ops.split(torch.zeros(2, 4), split=2, axis=1)
    except TypeError as e:
        show("split(x, split=2)", e)


class Interact(torch.nn.Module):
    """Pairwise interactions as in the ranking example, used for compile / export / TorchScript."""

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        stacked, _ = ops.concat([a, b, c], axis=1, add_axis=True)
        gram = ops.batch_mat_mul(stacked, stacked, trans_b=True)
        pairs = ops.batch_gather(gram.flatten(1), torch.tensor([3, 6, 7]))
        mean, second = ops.batch_moments(pairs, "NHWC")
        return pairs - mean + second.sqrt()


def compile_export_script():
    section("torch.compile, torch.export, TorchScript")
    net = Interact()
    inputs = [torch.randn(8, 4, requires_grad=True) for _ in range(3)]
    eager = net(*inputs)
    t0 = time.time()
    compiled = torch.compile(net, dynamic=True, fullgraph=True)
    out = compiled(*inputs)
    out.sum().backward()
    show(f"torch.compile (fullgraph, dynamic shapes, with backward; {time.time() - t0:.1f}s) equals eager",
         torch.allclose(out, eager))
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(net, tuple(x.detach() for x in inputs), dynamic_shapes=[{0: batch}] * 3)
    with tempfile.TemporaryDirectory() as d:
        torch.export.save(program, os.path.join(d, "net.pt2"))
        loaded = torch.export.load(os.path.join(d, "net.pt2")).module()
        small = [x.detach()[:5] for x in inputs]
        show("torch.export (dynamic batch) saved, loaded, run on batch 5: equals eager",
             torch.allclose(loaded(*small), net(*small)))
        scripted = torch.jit.script(net)
        scripted.save(os.path.join(d, "net.pt"))
        show("TorchScript saved and loaded: equals eager",
             torch.allclose(torch.jit.load(os.path.join(d, "net.pt"))(*inputs), eager))


# A small vision net as a Caffe2 job wrote it: brew's arg_scope put `order` and cuDNN hints on
# every operator, and the mobile-style init net holds a placeholder for the input `data`.
VISION_PREDICT_NET = """
name: "tiny_vision"
op { input: "data" input: "conv1_w" input: "conv1_b" output: "conv1" type: "Conv"
     arg { name: "kernel" i: 3 } arg { name: "pad" i: 1 } arg { name: "order" s: "NCHW" }
     arg { name: "exhaustive_search" i: 0 } arg { name: "ws_nbytes_limit" i: 67108864 } engine: "CUDNN" }
op { input: "conv1" input: "bn1_s" input: "bn1_b" input: "bn1_rm" input: "bn1_riv" output: "bn1"
     type: "SpatialBN" arg { name: "is_test" i: 1 } arg { name: "epsilon" f: 1e-5 } arg { name: "order" s: "NCHW" } }
op { input: "bn1" output: "bn1" type: "Relu" arg { name: "order" s: "NCHW" } arg { name: "cudnn_exhaustive_search" i: 0 } }
op { input: "bn1" output: "pool1" type: "MaxPool" arg { name: "kernel" i: 2 } arg { name: "stride" i: 2 }
     arg { name: "order" s: "NCHW" } }
op { input: "pool1" input: "fc_w" input: "fc_b" output: "logits" type: "FC" arg { name: "use_cudnn" i: 1 } }
op { input: "logits" output: "prob" type: "Softmax" arg { name: "order" s: "NCHW" } }
external_input: "data" external_input: "conv1_w" external_input: "conv1_b" external_input: "bn1_s"
external_input: "bn1_b" external_input: "bn1_rm" external_input: "bn1_riv" external_input: "fc_w" external_input: "fc_b"
external_output: "prob"
"""


def vision_init_net():
    from torch_caffe2ops.caffe2 import NetDef

    g = torch.Generator().manual_seed(0)
    init = NetDef(name="tiny_vision_init")
    shapes = {"conv1_w": [4, 3, 3, 3], "conv1_b": [4], "bn1_s": [4], "bn1_b": [4], "bn1_rm": [4],
              "bn1_riv": [4], "fc_w": [5, 4 * 4 * 4], "fc_b": [5]}
    for blob, shape in shapes.items():
        values = torch.rand(shape, generator=g) + 0.5 if blob == "bn1_riv" else torch.randn(shape, generator=g) * 0.3
        op = init.op.add(type="GivenTensorFill", output=[blob])
        op.arg.add(name="shape").ints.extend(shape)
        op.arg.add(name="values").floats.extend(values.flatten().tolist())
    placeholder = init.op.add(type="ConstantFill", output=["data"])  # as Caffe2 mobile nets do
    placeholder.arg.add(name="shape").ints.extend([1, 3, 8, 8])
    return init


def caffe2_import():
    section("importing a Caffe2 model (torch_caffe2ops.caffe2.load_net)")
    from torch_caffe2ops.caffe2 import load_net

    model = load_net(VISION_PREDICT_NET, vision_init_net())
    show("forward takes", model.caffe2_inputs)
    show("  (the init net's placeholder for data is only a shape hint)", list(model.caffe2_input_hints["data"].shape))
    show("arguments Caffe2 did not read (ignored)", model.caffe2_ignored_arguments)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    prob = model(x)
    show("prob = model(x)", prob.detach())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny_vision.pt2")
        program = torch.export.export(model.eval(), (x,))
        torch.export.save(program, path)
        again = torch.export.load(path).module()(x)
    show("torch.export round trip equals eager", bool(torch.equal(again, prob)))


def ranking(steps):
    section(f"ranking example: {steps} training steps (python examples/ranking/train.py --steps N --out DIR)")
    sys.path.insert(0, os.path.join(HERE, "ranking"))
    import train
    with tempfile.TemporaryDirectory() as d:
        train.train(train.parse_args(["--steps", str(steps), "--out", d]))


def main():
    p = argparse.ArgumentParser(description="torch_caffe2ops demo")
    p.add_argument("--steps", type=int, default=40, help="training steps of the ranking example")
    p.add_argument("--no-version", action="store_true", help="do not print the version line")
    args = p.parse_args()
    start = time.time()
    if not args.no_version:
        print(f"torch_caffe2ops {torch_caffe2ops.__version__} (built against torch {torch_caffe2ops.TORCH_VERSION})")
    torch.set_printoptions(precision=4)
    batch_family()
    concat_split_family()
    dropout_family()
    sparse_normalize_family()
    margin_rank_family()
    errors()
    compile_export_script()
    caffe2_import()
    ranking(args.steps)
    print(f"\ndemo finished in {time.time() - start:.0f}s. Next: bash scripts/docs.sh (documentation), "
          "examples/ranking/ (full example), bash scripts/test.sh (tests)")


if __name__ == "__main__":
    main()
