"""examples/ranking/train.py trains briefly on one process and on two (torchrun, gloo): the loss
falls, the two replicas end bitwise identical, and the reloaded torch.export program scores
like the eager model. Writes only under pytest's tmp_path."""
import json
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "examples", "ranking", "train.py")
STEPS = "40"


def run(cmd, out):
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")  # CPU + gloo, even on a GPU machine
    proc = subprocess.run(cmd + [TRAIN, "--steps", STEPS, "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "metrics.json") as f:
        return json.load(f)


def check_common(metrics, out, processes):
    assert metrics["processes"] == processes
    assert metrics["final_loss"] < 0.7 * metrics["first_loss"], metrics
    assert metrics["final_accuracy"] > metrics["first_accuracy"]
    assert metrics["export_equals_eager"] and metrics["export_max_abs_diff"] == 0.0
    for name in ("checkpoint.pt", "loss.png", "ranker.pt2"):
        assert (out / name).stat().st_size > 0, name
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == int(STEPS)


def test_one_process_and_export_reloads_in_a_fresh_process(tmp_path):
    metrics = run([sys.executable], tmp_path)
    check_common(metrics, tmp_path, 1)
    code = ("import torch, torch_caffe2ops, sys\n"
            "m = torch.export.load(sys.argv[1]).module()\n"
            "print(m(torch.rand(5, 4) * 3, torch.zeros(5, 3, dtype=torch.long)).shape)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ranker.pt2")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch.Size([5])" in proc.stdout


def test_two_processes_ddp_replicas_identical(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    launcher = [torchrun] if os.path.exists(torchrun) else [sys.executable, "-m", "torch.distributed.run"]
    metrics = run(launcher + ["--standalone", "--nproc_per_node", "2"], tmp_path)
    check_common(metrics, tmp_path, 2)
    a = torch.load(tmp_path / "replica_rank0.pt")
    b = torch.load(tmp_path / "replica_rank1.pt")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"replicas differ in {different}"
    # and training really happened on both: embedding rows were max-normed to <= 1
    for k in a:
        if k.startswith("tables.") or k.startswith("bucket_table."):
            assert a[k].norm(dim=1).max() <= 1.0 + 1e-5
