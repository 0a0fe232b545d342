"""Fuzz suite: every op, random inputs, each call must end in a result equal
to the reference or in an error that names the op; a crash or hang fails the case, not the
run (cases run in a worker process, see tests/fuzz/).

    FUZZ_CALLS=2000 (default)  FUZZ_SEED=0 (default)  FUZZ_WORKERS=1  FUZZ_CASE_TIMEOUT=60
    FUZZ_RLIMIT_GB=3 (address space a worker may add after importing torch; 0: no cap)
    FUZZ_THREADS=1 (intra-op threads in the worker)

The outcome counts per op are printed in pytest's terminal summary (also with -q); every
failing case is listed with its inputs and a one-line reproducer:
    python tests/fuzz/worker.py --repro OP SEED
"""
import os
import time

from fuzz import runner


class _Report:
    def __init__(self, text):
        self.text = text

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.section("caffe2ops fuzz")
        for line in self.text.splitlines():
            terminalreporter.write_line(line)


def test_fuzz(request):
    calls = int(os.environ.get("FUZZ_CALLS", "2000"))
    seed = int(os.environ.get("FUZZ_SEED", "0"))
    workers = int(os.environ.get("FUZZ_WORKERS", "1"))
    t0 = time.time()
    summary = runner.run(calls, seed, workers, float(os.environ.get("FUZZ_CASE_TIMEOUT", "60")))
    wall = time.time() - t0
    head = (f"fuzz: {len(summary.results)} calls (seed {seed}, {workers} worker(s)), "
            f"{len(summary.failures)} failures, {wall:.1f}s")
    text = summary.table() + "\n" + head
    if summary.failures:
        text += "\n" + summary.failure_text(limit=40)
    request.config.pluginmanager.register(_Report(text), f"caffe2ops-fuzz-report-{id(summary)}")
    assert not summary.failures, head + "\n" + summary.failure_text()


def test_harness_reports_crash_hang_and_huge_allocation(monkeypatch):
    """The worker's crash, hang and address-space cap turn into reported failures of the case
    that caused them, and the cases after them still run."""
    monkeypatch.setenv("FUZZ_SELFTEST", "crash:11,hang:12,alloc:13")
    jobs = [("batch_permutation", s) for s in (10, 11, 12, 13, 14)]
    summary = runner.run(0, 0, timeout=5, jobs=jobs)
    by_seed = {r["seed"]: r for r in summary.results}
    assert by_seed[11]["kind"] == "crash" and "signal" in by_seed[11]["msg"], by_seed[11]
    assert by_seed[12]["kind"] == "hang", by_seed[12]
    assert by_seed[13]["outcome"] == "fail" and "harness error" in by_seed[13]["kind"], by_seed[13]
    assert by_seed[10]["outcome"] != "fail" and by_seed[14]["outcome"] != "fail"


def test_every_op_is_fuzzed():
    import torch

    import torch_caffe2ops  # noqa: F401
    from fuzz.cases import OPS

    registered = sorted(n.split("::", 1)[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                        if n.startswith("caffe2ops::"))
    missing = sorted(set(registered) - set(OPS))
    assert not missing, f"ops without a fuzz generator/reference in tests/fuzz/cases.py: {missing}"
