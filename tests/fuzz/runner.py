"""Parent side of the fuzz suite: feeds cases to worker processes, one at a time, and turns a
dead or stuck worker into a reported failure of the case it was running (then restarts it).

    python tests/fuzz/runner.py [CALLS] [SEED]    # standalone run, prints the report
"""
import collections
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "worker.py")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from fuzz.cases import OPS, directed_seeds  # noqa: E402


def case_list(calls, seed):
    """The directed cases (past bugs and fidelity rules, negative seeds), then random cases round-robin
    over the ops up to `calls` in all; a random case's seed depends only on (seed, i)."""
    d = directed_seeds()
    return d + [(OPS[i % len(OPS)], seed * 1_000_003 + i) for i in range(max(0, calls - len(d)))]


def repro_cmd(op, seed):
    return f"python tests/fuzz/worker.py --repro {op} {seed}"


class Worker:
    def __init__(self, env):
        self.env = env
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env, cwd=TESTS)
        self.buf = b""
        self.ready = False

    def _line(self, deadline):
        """Next protocol line, or None at the deadline / when the worker is gone."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.startswith(b"@@FUZZ "):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return b"@@FUZZ EOF"
                self.buf += chunk

    def stderr_tail(self, n=3000):
        self.err.seek(0)
        data = self.err.read().decode(errors="replace")
        return data[-n:]

    def run(self, op, seed, timeout):
        """-> result dict; on a crash or hang the dict says so (and the worker is dead)."""
        if not self.ready:  # importing torch is not part of any case's time
            line = self._line(time.monotonic() + 600)
            if line != b"@@FUZZ READY":
                return self._died(op, seed, "while starting") if line else self._hung(op, seed, 600, "starting")
            self.ready = True
        try:
            self.proc.stdin.write((json.dumps({"op": op, "seed": seed}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died(op, seed, "worker pipe closed")
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(deadline)
            if line is None:
                return self._hung(op, seed, timeout, "")
            if line == b"@@FUZZ EOF":
                return self._died(op, seed, "")
            if line.startswith(b"@@FUZZ DONE "):
                return json.loads(line[len(b"@@FUZZ DONE "):])

    def _hung(self, op, seed, timeout, what):
        self.proc.kill()
        self.proc.wait()
        return dict(op=op, seed=seed, outcome="fail", kind="hang",
                    msg=f"no result after {timeout:.0f}s {what}".strip(), desc=op)

    def _died(self, op, seed, why):
        rc = self.proc.wait()
        sig = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
        return dict(op=op, seed=seed, outcome="fail", kind="crash",
                    msg=f"worker died ({sig}) {why}\n{self.stderr_tail()}", desc=op)

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def worker_env():
    import torch_caffe2ops

    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(torch_caffe2ops.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([pkg_root, TESTS] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def run(calls, seed, workers=1, timeout=60.0, progress=None, jobs=None):
    jobs = case_list(calls, seed) if jobs is None else jobs
    results = [None] * len(jobs)
    env = worker_env()
    lock = threading.Lock()
    nxt = [0]

    def loop():
        w = Worker(env)
        try:
            while True:
                with lock:
                    k = nxt[0]
                    nxt[0] += 1
                if k >= len(jobs):
                    return
                op, s = jobs[k]
                r = w.run(op, s, timeout)
                results[k] = r
                if r.get("kind") in ("crash", "hang"):
                    # describe the case from a fresh worker's point of view is not possible
                    # (it crashes); the seed is the reproducer.
                    w = Worker(env)
                if progress:
                    progress(k, r)
        finally:
            w.close()

    threads = [threading.Thread(target=loop) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Summary(results)


class Summary:
    def __init__(self, results):
        self.results = results
        self.per_op = collections.OrderedDict((op, collections.Counter()) for op in OPS)
        for r in results:
            c = self.per_op.setdefault(r["op"], collections.Counter())
            c["calls"] += 1
            c[r["outcome"]] += 1
        self.failures = [r for r in results if r["outcome"] == "fail"]

    def table(self):
        lines = [f"{'op':44s} {'calls':>6s} {'result':>7s} {'error':>6s} {'allowed':>8s} {'FAIL':>5s}"]
        tot = collections.Counter()
        for op, c in self.per_op.items():
            tot.update(c)
            lines.append(f"{op:44s} {c['calls']:6d} {c['result']:7d} {c['error']:6d} {c['allowed_error']:8d} {c['fail']:5d}")
        lines.append(f"{'TOTAL':44s} {tot['calls']:6d} {tot['result']:7d} {tot['error']:6d} {tot['allowed_error']:8d} {tot['fail']:5d}")
        lines.append("result: equal to the reference; error: clean error (op named) where the semantics require one; "
                     "allowed: clean error where the documented semantics are silent or the output cannot be allocated; "
                     "FAIL: wrong result, missing error, error not naming the op, crash or hang")
        return "\n".join(lines)

    def groups(self):
        g = collections.OrderedDict()
        for r in self.failures:
            g.setdefault((r["op"], r["kind"]), []).append(r)
        return g

    def failure_text(self, limit=None):
        out = [f"{len(self.failures)} failing fuzz cases in {len(self.groups())} groups (op, kind):"]
        for (op, kind), rs in self.groups().items():
            out.append(f"  {op}: {kind} x{len(rs)}")
        out.append("")
        for r in self.failures[:limit]:
            out.append(f"[{r['op']} seed={r['seed']}] {r['kind']}: {r['msg'].strip()}")
            out.append(f"    inputs: {r.get('desc', '')[:700]}")
            if r.get("expect"):
                out.append(f"    expected: {r['expect'][:300]}")
            out.append(f"    repro: {repro_cmd(r['op'], r['seed'])}")
        if limit is not None and len(self.failures) > limit:
            out.append(f"... {len(self.failures) - limit} more")
        return "\n".join(out)


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("FUZZ_CALLS", "2000"))
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("FUZZ_SEED", "0"))
    t0 = time.time()
    s = run(calls, seed, int(os.environ.get("FUZZ_WORKERS", "1")), float(os.environ.get("FUZZ_CASE_TIMEOUT", "60")))
    print(s.table())
    if s.failures:
        print(s.failure_text())
    print(f"fuzz: {calls} calls, seed {seed}, {len(s.failures)} failures, {time.time() - t0:.1f}s")
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.path.insert(0, TESTS)
    sys.exit(main())
