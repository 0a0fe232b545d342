"""Fuzz worker: runs cases in this (child) process and reports one line per case.

    python tests/fuzz/worker.py                  # protocol mode (driven by runner.py)
    python tests/fuzz/worker.py --repro OP SEED  # rebuild one case, run it, print everything

Protocol: each stdin line is JSON {"op", "seed"}; the worker writes "@@FUZZ START" before
running it and "@@FUZZ DONE <json>" after, so a crash (the process dies) or a hang (no DONE)
pins the case. Before running cases it caps its address space (RLIMIT_AS, FUZZ_RLIMIT_GB extra
over what importing torch took, default 3), so an attempted huge allocation fails instead of
eating the machine; under AddressSanitizer (libasan in LD_PRELOAD) the cap is left to
ASAN_OPTIONS (allocator_may_return_null / max_allocation_size_mb), since ASAN maps terabytes.
"""
import json
import os
import re
import resource
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/ (for `fuzz`)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_caffe2ops  # noqa: E402,F401
from fuzz import cases as fc  # noqa: E402

ALLOC_WORDS = ("can't allocate", "bad_alloc", "DefaultCPUAllocator", "Storage size calculation overflowed",
               "std::vector", "max_size", "out of memory")


def names_op(msg, op):
    return re.search(r"caffe2ops::" + re.escape(op) + r"(?![A-Za-z0-9_])", msg) is not None


def as_list(res):
    if isinstance(res, torch.Tensor):
        return [res]
    if isinstance(res, (list, tuple)):
        return list(res)
    return [res]


def vals_equal(a, e):
    a, e = np.asarray(a), np.asarray(e)
    if a.dtype.kind in "iub" and e.dtype.kind in "iub":
        return a.astype(np.int64) == e.astype(np.int64)
    if a.dtype.kind == "c" or e.dtype.kind == "c":
        a, e = a.astype(np.complex128), e.astype(np.complex128)
        return fc.eq_nan(a.real, e.real) & fc.eq_nan(a.imag, e.imag)
    return fc.eq_nan(a, e)


def finfo_max(dt):
    return torch.finfo(dt).max if dt.is_floating_point else np.inf


def compare(outs, res):
    """None if `res` matches the expected outputs, else a description of the difference."""
    got = as_list(res)
    if outs is None:  # meta run of an input only its values make invalid: nothing to check
        return None
    if outs and outs[0].mode == "custom":
        return outs[0].fn(got)
    if len(got) != len(outs):
        return f"{len(got)} outputs, expected {len(outs)}"
    for i, (o, a) in enumerate(zip(outs, got)):
        if not isinstance(a, torch.Tensor):
            return f"output {i} is {type(a).__name__}"
        if o.mode == "any":
            continue
        if tuple(a.shape) != o.shape:
            return f"output {i} shape {list(a.shape)}, expected {list(o.shape)}"
        if a.dtype not in o.dtypes:
            return f"output {i} dtype {a.dtype}, expected {' or '.join(map(str, o.dtypes))}"
        if a.device.type == "meta" or o.mode == "shape" or o.arr is None or a.numel() == 0:
            continue
        act = fc.P(a)
        exp = np.asarray(o.arr).reshape(act.shape)
        keep = np.ones(act.shape, bool) if o.skip is None else ~np.asarray(o.skip).reshape(act.shape)
        if o.mode == "bits":
            ok = fc.same_bits(act, exp)
            if not ok:
                return f"output {i} not bitwise equal to the input"
            continue
        if o.mode in ("exact", "values"):
            bad = ~vals_equal(act, exp) & keep
        else:  # close
            a64 = act.astype(np.float64) if act.dtype.kind != "c" else act
            e64 = exp.astype(np.float64)
            if a.dtype.is_floating_point:
                e64 = fc.np_round(e64, a.dtype).astype(np.float64)  # overflow to inf as the dtype does
            mag = np.abs(o.fn) if isinstance(o.fn, np.ndarray) else np.abs(e64)
            mag = np.asarray(mag, np.float64).reshape(act.shape)
            mag = np.where(np.isnan(mag), np.abs(e64), mag)  # 0 * inf in a magnitude bound
            with np.errstate(all="ignore"):
                unconstrained = mag > finfo_max(a.dtype) / 4  # intermediate overflow possible
                finite = np.isfinite(e64)
                tolv = o.rtol * (mag + np.abs(e64)) + o.atol + (1e-300 if a.dtype == torch.float64 else 1e-30)
                okv = np.where(finite, np.abs(a64 - e64) <= tolv, vals_equal(a64, e64))
            bad = ~okv & keep & ~unconstrained
        if bad.any():
            pos = np.argwhere(bad)[:3]
            got_v = [act[tuple(p)].item() for p in pos]
            exp_v = [exp[tuple(p)].item() for p in pos]
            return (f"output {i} differs at {int(bad.sum())} of {bad.size} positions, e.g. {pos.tolist()}: "
                    f"got {got_v}, expected {exp_v}")
    return None


def run_case(op, seed):
    """-> dict(outcome, kind, msg, desc). outcome: result | error | allowed_error | fail."""
    case = fc.Case(op, seed)
    desc = f"{op}({fc.describe(case.args)})"
    if case.device != "cpu":
        desc += f" device={case.device}" + (f"{list(case.mixed_path)}" if case.device == "mixed" else "")
    if case.notes:
        desc += " notes=" + ",".join(case.notes)
    ctx = fc.R()
    try:
        try:
            outs = fc.REFERENCES[op](ctx, *case.args)
        except fc.TooBig as e:
            ctx.maybe("output too big to compute here")
            outs = e.outs
        expect, why = ("either" if ctx.may else "result"), "; ".join(ctx.may)
    except fc.Invalid as e:
        expect, why, outs = "error", e.why, None
        if e.value and case.device == "meta":
            expect = "either"
    except Exception as e:  # a bug in the reference: report it, do not hide it
        return dict(outcome="fail", kind="reference error",
                    msg=f"{type(e).__name__}: {e}\n{traceback.format_exc()[-800:]}", desc=desc)
    if case.device == "meta" and expect != "error" and (ctx.data_dependent):
        expect, why = "either", (why + "; data-dependent output shape on meta").strip("; ")
    if case.device == "mixed":
        others = [p for p, _ in fc.leaves(case.args) if p[0] not in ctx.host and p != case.mixed_path]
        if case.mixed_path[0] in ctx.host or not others:
            expect, why = "either", "only a host-read / ignored argument is on another device"
            outs = [fc.Out(o.shape, o.dtypes, mode="shape") if o.mode != "custom" else fc.Out([], [], mode="custom", fn=lambda r: None) for o in outs] if outs else None
        else:
            expect, why = "error", (why + "; mixed meta/CPU").strip("; ")
    args = case.device_args()
    before = None
    if ctx.inplace_of is not None:
        before = args[ctx.inplace_of]
    fn = getattr(torch.ops.caffe2ops, op)
    try:
        res = fn(*args)
    except Exception as e:
        msg = f"{type(e).__name__}: {str(e).strip()}"
        if not names_op(str(e), op):
            kind = "unclean error (allocator)" if any(w in msg for w in ALLOC_WORDS) else "unclean error"
            other = re.search(r"caffe2ops::(\w+)", msg)
            if other:
                kind = f"error names caffe2ops::{other.group(1)}, not the op"
            return dict(outcome="fail", kind=kind, msg=msg[:1500], desc=desc, expect=f"{expect}: {why}")
        if expect == "result":
            return dict(outcome="fail", kind="rejected valid input", msg=msg[:1500], desc=desc, expect="result")
        return dict(outcome="error" if expect == "error" else "allowed_error", kind="", msg=msg[:300], desc=desc)
    if expect == "error":
        return dict(outcome="fail", kind="no error", msg=f"returned {summarize(res)}; expected an error: {why}", desc=desc)
    if before is not None:
        if not (isinstance(res, torch.Tensor) and res is before or (isinstance(res, torch.Tensor) and res.device == before.device and res.data_ptr() == before.data_ptr())):
            return dict(outcome="fail", kind="in-place result is not param", msg=summarize(res), desc=desc)
        res = before
    diff = compare(outs, res)
    if diff:
        return dict(outcome="fail", kind="wrong result", msg=diff[:1500], desc=desc)
    return dict(outcome="result", kind="", msg="", desc=desc)


def summarize(res):
    return "[" + ", ".join(fc.describe_tensor(t) if isinstance(t, torch.Tensor) else repr(t)[:40] for t in as_list(res)[:6]) + "]"


def limit_memory():
    if "libasan" in os.environ.get("LD_PRELOAD", "") or os.environ.get("FUZZ_RLIMIT_GB") == "0":
        return
    with open("/proc/self/status") as f:
        vm = int(f.read().split("VmSize:")[1].split()[0]) * 1024
    extra = float(os.environ.get("FUZZ_RLIMIT_GB", "3")) * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (int(vm + extra), int(vm + extra)))


def setup():
    torch.set_num_threads(int(os.environ.get("FUZZ_THREADS", "1")))
    torch.ops.caffe2ops.batch_moments(torch.ones(2, 3))  # start thread pools before the cap
    limit_memory()


def selftest(seed):
    """FUZZ_SELFTEST="crash:S,hang:S,alloc:S": misbehave on case seed S (tests of the harness)."""
    for item in filter(None, os.environ.get("FUZZ_SELFTEST", "").split(",")):
        what, s = item.split(":")
        if int(s) != seed:
            continue
        if what == "crash":
            os.abort()
        if what == "hang":
            import time
            time.sleep(3600)
        if what == "alloc":  # must fail under the RLIMIT_AS cap instead of taking 16 GB
            torch.ones(2**32, dtype=torch.float32)


def main():
    setup()
    out = sys.stdout
    out.write("@@FUZZ READY\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        out.write("@@FUZZ START\n")
        out.flush()
        try:
            selftest(job["seed"])
            r = run_case(job["op"], job["seed"])
        except BaseException as e:  # noqa: BLE001
            r = dict(outcome="fail", kind="harness error", msg=f"{type(e).__name__}: {e}", desc=job["op"])
        r.update(op=job["op"], seed=job["seed"])
        out.write("@@FUZZ DONE " + json.dumps(r) + "\n")
        out.flush()


def repro(op, seed):
    setup()
    case = fc.Case(op, seed)
    print("case:", op, "seed", seed, "device", case.device, "notes", case.notes)
    print("args:", fc.describe(case.args))
    try:
        ctx, outs = case.reference()
        print("reference: result", "(may raise: " + "; ".join(ctx.may) + ")" if ctx.may else "")
    except fc.Invalid as e:
        print("reference: must raise:", e.why, "(value-dependent)" if e.value else "")
    r = run_case(op, seed)
    print("outcome:", r["outcome"], r.get("kind", ""))
    print("message:", r.get("msg", ""))
    return 1 if r["outcome"] == "fail" else 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--repro":
        sys.exit(repro(sys.argv[2], int(sys.argv[3])))
    main()
