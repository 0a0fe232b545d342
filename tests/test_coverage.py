"""The coverage guard: every registered caffe2ops:: op has each piece CONTRIBUTING.md's checklist
names, and the package has no import cycle. The guard is a function of an op's qualified name,
so the last test shows it on a scratch op registered without its pieces."""
import ast
import os
import re

import pytest
import torch

import samples
from fuzz import cases as fuzz_cases
from samples import DIFF
from torch_caffe2ops import _func, caffe2, ops
from utils import ROOT

# The Caffe2 type each op was ported from (None: no Caffe2 type of its own, e.g. a gradient op
# Caffe2 built from others, or one the NetDef importer does not meet in an inference net).
CAFFE2_TYPES = {
    "batch_permutation": "BatchPermutation", "batch_permutation_gradient": None,
    "batch_gather": "BatchGather", "batch_gather_gradient": None,
    "batch_sparse_to_dense": "BatchSparseToDense", "batch_sparse_to_dense_gradient": None,
    "batch_dense_to_sparse": "BatchDenseToSparse", "batch_dense_to_sparse_gradient": None,
    "batch_mat_mul": "BatchMatMul", "batch_mat_mul_gradient": None,
    "batch_moments": "BatchMoments", "batch_moments_gradient": None,
    "batch_box_cox": "BatchBoxCox", "batch_bucketize": "BatchBucketize",
    "concat_batch_mat_mul_batch_gather": "ConcatBatchMatMulBatchGatherOp",
    "concat_batch_mat_mul_batch_gather_gradient": None, "batch_bucket_one_hot": "BatchBucketOneHot",
    "concat": "Concat", "depth_concat": "DepthConcat", "concat_gradient": None,
    "split": "Split", "depth_split": "DepthSplit", "split_by_lengths": "SplitByLengths", "split_gradient": None,
    "dropout": "Dropout", "dropout_gradient": None, "cudnn_dropout": None, "cudnn_dropout_gradient": None,
    "sparse_normalize": "SparseNormalize", "sparse_normalize_": None,
    "float16_sparse_normalize": "Float16SparseNormalize", "float16_sparse_normalize_": None,
    "margin_ranking_criterion": "MarginRankingCriterion", "margin_ranking_criterion_gradient": None,
}


def registered_ops(namespace="caffe2ops"):
    prefix = namespace + "::"
    return sorted({n for n in torch._C._dispatch_get_all_op_names() if n.startswith(prefix)})


def _family(name):
    for family, module in ops.FAMILIES.items():
        if name in vars(module) and callable(vars(module)[name]):
            return family
    return None


def _has_fake(qualname):
    entry = torch._library.simple_registry.singleton.find(qualname)
    return entry.fake_impl.kernel is not None


def _differentiable(name, has_autograd, op_samples):
    """True / False, or None when nothing says (an Autograd kernel and no sample)."""
    if any(DIFF in s.tags for s in op_samples):
        return True
    if not has_autograd:
        return False
    return False if op_samples else None


def coverage_report(qualname):
    """What op `qualname` lacks of CONTRIBUTING.md's checklist (empty: complete)."""
    name = qualname.split("::", 1)[1]
    has = lambda key: torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key)  # noqa: E731
    missing = []
    family = _family(name) if qualname.startswith("caffe2ops::") else None
    if family is None or name not in ops.__all__:
        missing.append("wrapper in torch_caffe2ops/ops/<family>.py")
    else:
        page = open(os.path.join(ROOT, "docs", "operators", f"{family}.md")).read()
        if not re.search(rf"^#+ .*\b{re.escape(name)}\b", page, re.M):
            missing.append(f"section in docs/operators/{family}.md")
    if name not in fuzz_cases.GENERATORS or name not in fuzz_cases.REFERENCES:
        missing.append("fuzz generator and reference in tests/fuzz/cases.py")
    op_samples = samples.by_op().get(name, []) if qualname.startswith("caffe2ops::") else []
    if not op_samples:
        missing.append("samples in tests/samples/<family>.py")
    if not has("FuncTorchBatched"):
        missing.append("vmap rule (torch_caffe2ops/_vmap.py)")
    elif op_samples and not any(samples.runs_under_vmap(s) for s in op_samples) and \
            not all(samples.CUDA_ONLY in s.tags for s in op_samples):
        # the vmap and threads checks skip random samples, so a random op needs one that draws
        # nothing (dropout's test mode); an op that runs only on CUDA is not vmapped here
        missing.append("a sample the vmap and threads checks run (not RANDOM) in tests/samples/<family>.py")
    differentiable = _differentiable(name, has("Autograd"), op_samples)
    if differentiable is None or (differentiable and not (_func.has_path(name) or has("CompositeImplicitAutograd"))):
        missing.append("torch.func path (a Formula in its family's ops module)")
    if not (has("Meta") or has("CompositeImplicitAutograd") or has("CompositeExplicitAutograd") or _has_fake(qualname)):
        missing.append("Meta kernel or fake")
    if name not in CAFFE2_TYPES:
        missing.append("Caffe2 type in tests/test_coverage.py::CAFFE2_TYPES")
    elif CAFFE2_TYPES[name] is not None and caffe2.get_converter(CAFFE2_TYPES[name]) is None:
        missing.append(f"importer converter for {CAFFE2_TYPES[name]}")
    return missing


@pytest.mark.parametrize("qualname", registered_ops())
def test_every_registered_op_is_complete(qualname):
    assert coverage_report(qualname) == []


def test_every_op_with_a_gradient_has_a_torch_func_path():
    """Every op whose Autograd kernel is a C++ autograd Function (not the no-gradient
    fallback) has a torch.func path, and the samples tag exactly those as differentiable."""
    by_op = samples.by_op()
    for qualname in registered_ops():
        name = qualname.split("::", 1)[1]
        if not torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "Autograd"):
            continue
        if torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "Functionalize") or name.endswith("_"):
            continue  # in place: no gradient by construction (its samples carry no DIFF tag)
        runnable = [s for s in by_op[name] if samples.CUDA_ONLY not in s.tags]
        if not runnable:  # CUDA-only ops: their samples say
            assert any(DIFF in s.tags for s in by_op[name]) <= _func.has_path(name), name
            continue
        args = runnable[0].args()
        for a in [v for a in args for v in (a if isinstance(a, list) else [a])]:
            if isinstance(a, torch.Tensor) and a.is_floating_point() and a.is_leaf:
                a.requires_grad_(True)
        out = getattr(torch.ops.caffe2ops, name)(*args)
        outs = [o for o in (out if isinstance(out, (list, tuple)) else [out]) if o.is_floating_point()]
        has_gradient = any(o.grad_fn is not None and "NotImplemented" not in o.grad_fn.name() for o in outs)
        assert has_gradient == _func.has_path(name), name
        assert has_gradient == any(DIFF in s.tags for s in by_op[name]), name


def _imports(path, module):
    """Modules of torch_caffe2ops imported at import time (module level) by `path`."""
    tree = ast.parse(open(path).read())
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    found = set()
    for node in tree.body:
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("torch_caffe2ops")}
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - sub.level + 1] + ([sub.module] if sub.module else []))
                if base.startswith("torch_caffe2ops"):
                    found |= {f"{base}.{a.name}" for a in sub.names} | {base}
    return found


def test_no_import_cycle():
    root = os.path.join(ROOT, "torch_caffe2ops")
    modules = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].replace(os.sep, ".")
                modules[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(d, f)
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}
    # a package's own __init__ runs before its submodules: an edge to a parent package is not a cycle
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == []


def test_the_guard_reports_a_scratch_op_without_its_pieces():
    lib = torch.library.Library("caffe2ops_scratch", "DEF")
    try:
        lib.define("scratch(Tensor x) -> Tensor")
        lib.impl("scratch", lambda x: x * 2, "CPU")
        lib.impl("scratch", lambda x: x * 2, "Autograd")
        assert registered_ops("caffe2ops_scratch") == ["caffe2ops_scratch::scratch"]
        assert coverage_report("caffe2ops_scratch::scratch") == [
            "wrapper in torch_caffe2ops/ops/<family>.py",
            "fuzz generator and reference in tests/fuzz/cases.py",
            "samples in tests/samples/<family>.py",
            "vmap rule (torch_caffe2ops/_vmap.py)",
            "torch.func path (a Formula in its family's ops module)",
            "Meta kernel or fake",
            "Caffe2 type in tests/test_coverage.py::CAFFE2_TYPES",
        ]
    finally:
        lib._destroy()
    # and a complete op reports nothing
    assert coverage_report("caffe2ops::batch_gather") == []
