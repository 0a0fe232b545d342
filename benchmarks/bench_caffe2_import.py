"""Caffe2 importer: imported nets against the same model written in PyTorch.

    .venv/bin/python benchmarks/bench_caffe2_import.py [--quick] [--only resnet50 compile chain]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_caffe2_import.py

Rows (same process, interleaved, medians; ratio = reference / imported, > 1: the import is
faster):

* resnet50: the Caffe2 zoo ResNet-50 (tests/fixtures/caffe2_real, weights synthesized by
  tests/caffe2_zoo.py) imported, vs torchvision's resnet50 with the same weights (the
  hand-written ResNet-50 of tests/caffe2_zoo.py when torchvision is not importable), eager,
  float32, batch 8 at 224x224, NCHW and channels-last. Target: ratio >= 0.95.
* compile: torch.compile (inductor) of the imported ResNet-50 vs its eager run.
* chain: per-node overhead, a 200-operator chain of Add/Mul/Relu on a [4, 16] tensor imported
  vs the same chain written by hand in an nn.Module. Target: imported / hand-written < 1.2.
* ranking: a DPER-style ranker (20 sparse features pooled from 10000x16 tables, a dense FC,
  Concat, two FCs) imported, vs the same model written directly in PyTorch, at batch 1 and
  512: fused 8-bit tables against torch.ops.quantized.embedding_bag_byte_rowwise_offsets, and
  float tables against F.embedding_bag. Target: within 1.2x (ratio >= 0.83).

--quick: batch 1 and few repetitions (a smoke run on a busy machine; read only the ratios).
"""
import argparse
import os
import statistics
import sys

import torch

from common import median_time

sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import caffe2_zoo  # noqa: E402
from torch_caffe2ops import caffe2 as c2  # noqa: E402


def resnet50_pair(batch):
    net, data, _, weights, _ = caffe2_zoo.zoo_case("resnet50", batch=batch)
    ours = c2.load_net(net, init_blobs=weights, outputs=["gpu_0/pred"]).eval()
    ref = caffe2_zoo.torchvision_reference("resnet50", weights).eval()
    ref_name = "torchvision resnet50" if caffe2_zoo.torchvision_problem() is None else "hand-written ResNet-50"
    x = torch.randn(batch, 3, 224, 224)
    return ours, ref, ref_name, x


def resnet50_rows(args):
    ours, ref, ref_name, x = resnet50_pair(args.batch)
    yield (f"resnet50 eager NCHW b{args.batch}", lambda: ours(x), lambda: ref(x), ref_name, ">= 0.95")
    ours_cl = ours.to(memory_format=torch.channels_last)
    ref_cl = ref.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    yield (f"resnet50 eager channels-last b{args.batch}", lambda: ours_cl(x_cl), lambda: ref_cl(x_cl),
           ref_name + " (channels-last)", ">= 0.95")


def compile_rows(args):
    ours, _, _, x = resnet50_pair(args.batch)
    compiled = torch.compile(ours, backend="inductor", dynamic=False)
    yield (f"resnet50 compiled b{args.batch}", lambda: compiled(x), lambda: ours(x), "the imported net, eager", "")


def chain_net(length=200):
    """An Add/Mul/Relu chain (Add and Mul read a [16] constant each) as a NetDef + constants."""
    net = c2.NetDef(name="chain")
    consts = {}
    g = torch.Generator().manual_seed(0)
    x = "x"
    for i in range(length):
        kind = ("Add", "Mul", "Relu")[i % 3]
        op = net.op.add(type=kind, output=[f"h{i}"])
        op.input.append(x)
        if kind != "Relu":
            name = f"c{i}"
            consts[name] = (torch.rand(16, generator=g) + 0.5) if kind == "Mul" else torch.randn(16, generator=g) * 0.1
            op.input.append(name)
        x = f"h{i}"
    net.external_input.extend(["x"] + list(consts))
    net.external_output.append(x)
    return net, consts


class HandChain(torch.nn.Module):
    """The same chain written out by hand: one line per operator, the constants as named
    parameters read as attributes (as a hand-written module reads self.weight)."""

    def __init__(self, consts, length=200):
        super().__init__()
        lines = ["def forward(self, x):"]
        for i in range(length):
            kind = i % 3
            if kind != 2:
                self.register_parameter(f"c{i}", torch.nn.Parameter(consts[f"c{i}"]))
            lines.append(("    x = x + self.c{0}", "    x = x * self.c{0}", "    x = torch.relu(x)")[kind].format(i))
        lines.append("    return x")
        namespace = {"torch": torch}
        exec("\n".join(lines), namespace)  # the text a person would type, without typing it
        self._forward = namespace["forward"]

    def forward(self, x):
        return self._forward(self, x)


def chain_rows(args):
    net, consts = chain_net()
    ours = c2.load_net(net, init_blobs=consts)
    hand = HandChain(consts)
    x = torch.randn(4, 16)
    assert torch.allclose(ours(x), hand(x))
    yield ("chain of 200 ops [4,16] no_grad", lambda: ours(x), lambda: hand(x), "hand-written nn.Module",
           "imported/hand < 1.2")


FEATURES, EMB_DIM, ROWS, DENSE_DIM = 20, 16, 10000, 13


def ranker_net(quantized):
    """A DPER-style ranker: dense features through an FC, 20 sparse id lists pooled from their
    own embedding tables (fused 8-bit row-wise, or float), everything concatenated, two FCs."""
    lookup = "SparseLengthsSumFused8BitRowwise" if quantized else "SparseLengthsSum"
    net = c2.NetDef(name="ranker")
    op = net.op.add(type="FC", input=["dense", "dense_w", "dense_b"], output=["dense_h"])
    net.op.add(type="Relu", input=["dense_h"], output=["dense_h"])
    pooled = []
    for f in range(FEATURES):
        net.op.add(type=lookup, input=[f"emb{f}", f"ids{f}", f"len{f}"], output=[f"pooled{f}"])
        pooled.append(f"pooled{f}")
    op = net.op.add(type="Concat", input=["dense_h"] + pooled, output=["features", "split_info"])
    op.arg.add(name="axis", i=1)
    net.op.add(type="FC", input=["features", "top1_w", "top1_b"], output=["top1"])
    net.op.add(type="Relu", input=["top1"], output=["top1"])
    net.op.add(type="FC", input=["top1", "top2_w", "top2_b"], output=["logit"])
    net.op.add(type="Sigmoid", input=["logit"], output=["prob"])
    inputs = ["dense"] + [b for f in range(FEATURES) for b in (f"ids{f}", f"len{f}")]
    net.external_input.extend(inputs)
    net.external_output.append("prob")
    g = torch.Generator().manual_seed(0)
    params = {"dense_w": torch.randn(64, DENSE_DIM, generator=g) * 0.2, "dense_b": torch.zeros(64),
              "top1_w": torch.randn(256, 64 + FEATURES * EMB_DIM, generator=g) * 0.05, "top1_b": torch.zeros(256),
              "top2_w": torch.randn(1, 256, generator=g) * 0.05, "top2_b": torch.zeros(1)}
    for f in range(FEATURES):
        table = torch.randn(ROWS, EMB_DIM, generator=g)
        params[f"emb{f}"] = torch.ops.quantized.embedding_bag_byte_prepack(table) if quantized else table
    net.external_input.extend(params)
    return net, params


class DirectRanker(torch.nn.Module):
    """The same ranker written directly in PyTorch, taking the same inputs (lengths, as Caffe2
    fed them): F.embedding_bag on float tables, torch.ops.quantized's byte kernel on fused ones."""

    def __init__(self, params, quantized):
        super().__init__()
        self.quantized = quantized
        self.dense = torch.nn.Linear(DENSE_DIM, 64)
        self.top1 = torch.nn.Linear(64 + FEATURES * EMB_DIM, 256)
        self.top2 = torch.nn.Linear(256, 1)
        with torch.no_grad():
            for layer, name in ((self.dense, "dense"), (self.top1, "top1"), (self.top2, "top2")):
                layer.weight.copy_(params[f"{name}_w"])
                layer.bias.copy_(params[f"{name}_b"])
        for f in range(FEATURES):
            if quantized:  # a uint8 table is data; a float table is trained, as the import's is
                self.register_buffer(f"emb{f}", params[f"emb{f}"])
            else:
                self.register_parameter(f"emb{f}", torch.nn.Parameter(params[f"emb{f}"]))
        self.tables = [getattr(self, f"emb{f}") for f in range(FEATURES)]

    def forward(self, dense, *sparse):
        pooled = [torch.relu(self.dense(dense))]
        for f, table in enumerate(self.tables):
            ids, lengths = sparse[2 * f], sparse[2 * f + 1]
            offsets = torch.nn.functional.pad(torch.cumsum(lengths, 0, dtype=ids.dtype), [1, 0])
            if self.quantized:
                pooled.append(torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                    table, ids, offsets, False, 0, False, None, None, True))
            else:
                pooled.append(torch.nn.functional.embedding_bag(ids, table, offsets, mode="sum",
                                                                include_last_offset=True))
        h = torch.relu(self.top1(torch.cat(pooled, 1)))
        return torch.sigmoid(self.top2(h))


def ranker_inputs(batch, seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(batch, DENSE_DIM, generator=g)]
    for _ in range(FEATURES):
        lengths = torch.randint(0, 21, (batch,), generator=g, dtype=torch.int32)
        inputs += [torch.randint(0, ROWS, (int(lengths.sum()),), generator=g), lengths]
    return inputs


def ranking_rows(args):
    for quantized in (True, False):
        net, params = ranker_net(quantized)
        ours = c2.load_net(net, init_blobs=params).eval()
        direct = DirectRanker(params, quantized).eval()
        kind = "8-bit tables vs torch.ops.quantized" if quantized else "float tables vs F.embedding_bag"
        for batch in (1, 512):
            x = ranker_inputs(batch)
            torch.testing.assert_close(ours(*x), direct(*x), rtol=1e-4, atol=1e-5)
            yield (f"ranker {FEATURES} features, {kind}, b{batch}", lambda x=x: ours(*x), lambda x=x: direct(*x),
                   "the same model written in PyTorch", ">= 0.83 (within 1.2x)")


SCENARIOS = {"resnet50": resnet50_rows, "compile": compile_rows, "chain": chain_rows, "ranking": ranking_rows}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(SCENARIOS), nargs="*")
    p.add_argument("--repeat", type=int, default=15, help="timed runs per measurement (median reported)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="batch 1, 3 repetitions")
    p.add_argument("--markdown", help="also write the table to this file")
    args = p.parse_args()
    if args.quick:
        args.batch, args.repeat = 1, 3
    torch.manual_seed(0)
    title = f"caffe2 import (cpu, {torch.get_num_threads()} threads, torch {torch.__version__})"
    cols = ("row", "imported ms", "reference ms", "reference/imported", "target", "reference")
    print(f"\n## {title}\n\n" + " | ".join(cols), flush=True)
    rows = []
    with torch.no_grad():
        for name in SCENARIOS:
            if args.only and name not in args.only:
                continue
            for label, ours_fn, ref_fn, ref_name, target in SCENARIOS[name](args):
                ours, ref = [], []
                for _ in range(3):  # interleaved: drift on a noisy machine hits both alike
                    ours.append(median_time(ours_fn, max(1, args.repeat // 3)))
                    ref.append(median_time(ref_fn, max(1, args.repeat // 3)))
                o, r = statistics.median(ours), statistics.median(ref)
                row = (label, f"{o * 1e3:.3f}", f"{r * 1e3:.3f}", f"{r / o:.2f}x", target, ref_name)
                rows.append(row)
                print(" | ".join(row), flush=True)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"## {title}\n\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
            f.write("".join("| " + " | ".join(r) + " |\n" for r in rows) + "\n")


if __name__ == "__main__":
    main()
