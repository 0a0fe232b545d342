"""Trains the DLRM-style ranker of model.py on synthetic click data.

One process:   python examples/ranking/train.py --steps 200 --out runs/ranker
Two processes: torchrun --nproc_per_node 2 examples/ranking/train.py --steps 200 --out runs/ranker
               (DistributedDataParallel: gloo on CPU, NCCL on GPU)

Each step: forward, pairwise margin-ranking loss, backward, optimizer step, then the max-norm
regularizer (sparse_normalize_) on the embedding rows the step touched. Under DDP the touched
ids are all-gathered first, so every replica normalizes the same rows and the replicas stay
bitwise identical. Writes into --out: checkpoint.pt, loss.png, ranker.pt2 (torch.export),
metrics.json and, per rank, replica_rank<r>.pt (for comparing replicas).
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ClickData, Ranker, pair_up, touched_rows  # noqa: E402

from torch_caffe2ops import nn as c2nn  # noqa: E402
from torch_caffe2ops import ops  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--batch-size", type=int, default=256, help="examples per step and process")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--max-norm", type=float, default=1.0, help="max L2 norm of an embedding row")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def setup_distributed(device_arg):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_arg == "cuda" or (device_arg == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, device


def pairwise_loss(criterion, scores, clicks, perm):
    """Mean margin-ranking loss over pairs with different labels, and the pairwise accuracy."""
    own, partner, label = pair_up(scores, clicks, perm)
    per_pair = criterion(own, partner, label)                  # elementwise (reduction="none")
    informative = (label != 0).to(scores.dtype)
    count = informative.sum().clamp_min(1.0)
    loss = (per_pair * informative).sum() / count
    correct = ((own - partner).sign().to(torch.int32) == label).to(scores.dtype) * informative
    return loss, correct.sum() / count


@torch.no_grad()
def max_norm_(model, rows, world, max_norm):
    """Caffe2's MaxNorm regularizer: rescale the touched rows of every table to norm <= max_norm.
    With several replicas, every replica normalizes the union of all replicas' rows."""
    for table, ids in zip(model.embedding_tables(), rows):
        if world > 1:
            gathered = [torch.empty_like(ids) for _ in range(world)]
            dist.all_gather(gathered, ids.contiguous())
            ids = torch.cat(gathered)
        ops.sparse_normalize_(table.weight, ids.unique(), use_max_norm=True, norm=max_norm)


def require_example_packages(progress):
    """The example's own packages (tqdm, matplotlib) come with the `examples` extra; name it
    before training rather than fail at the end of a run."""
    def missing(module):
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            return True

    wanted = {"matplotlib": "the loss curve"}
    if progress:
        wanted["tqdm"] = "the progress bar; --no-progress runs without it"
    absent = [f"{module} ({why})" for module, why in wanted.items() if missing(module)]
    if absent:
        raise ImportError(f"examples/ranking needs {', '.join(absent)}: "
                          'pip install "torch_caffe2ops[examples]"')


def train(args):
    require_example_packages(progress=not args.no_progress)
    rank, world, device = setup_distributed(args.device)
    torch.manual_seed(args.seed)                 # same initial weights on every replica
    model = Ranker(dropout=args.dropout).to(device)
    torch.manual_seed(args.seed + 1 + rank)      # different dropout masks per replica
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = c2nn.MarginRankingCriterion(margin=args.margin, reduction="none")
    data = ClickData(seed=args.seed)
    losses, accuracies = [], []
    progress = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm
        progress = tqdm(total=args.steps, desc=f"ranker ({world} process{'es' if world > 1 else ''})",
                        unit="step", dynamic_ncols=True)
    start = time.time()
    model.train()
    for step in range(args.steps):
        dense, sparse, clicks = (t.to(device) for t in data.batch(step, rank, args.batch_size))
        perm = torch.randperm(args.batch_size, generator=torch.Generator().manual_seed(step)).to(device)
        scores = net(dense, sparse)
        loss, acc = pairwise_loss(criterion, scores, clicks, perm)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        max_norm_(model, touched_rows(model, dense, sparse), world, args.max_norm)
        stats = torch.stack([loss.detach(), acc.detach()])
        if world > 1:
            dist.all_reduce(stats)
            stats /= world
        losses.append(stats[0].item())
        accuracies.append(stats[1].item())
        if progress is not None:
            progress.set_postfix(loss=f"{losses[-1]:.4f}", acc=f"{accuracies[-1]:.3f}")
            progress.update()
    if progress is not None:
        progress.close()
    elapsed = time.time() - start

    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, f"replica_rank{rank}.pt"))
    if world > 1:
        dist.barrier()
    result = None
    if rank == 0:
        result = finish(args, model, optimizer, data, losses, accuracies, world, elapsed, device)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def finish(args, model, optimizer, data, losses, accuracies, world, elapsed, device):
    out = args.out
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": args.steps,
                "args": vars(args)}, os.path.join(out, "checkpoint.pt"))
    plot(losses, accuracies, os.path.join(out, "loss.png"), world)

    # Export the scoring model (eval mode: dropout is the identity) with a dynamic batch size,
    # save it, load it back and check that it scores a held-out batch like the eager model.
    model.eval()
    dense, sparse, clicks = (t.to(device) for t in data.batch(10**6, 0, 512))
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(model, (dense, sparse), dynamic_shapes=({0: batch}, {0: batch}))
    path = os.path.join(out, "ranker.pt2")
    torch.export.save(program, path)
    loaded = torch.export.load(path).module()
    with torch.no_grad():
        eager = model(dense, sparse)
        exported = loaded(dense, sparse)
        exported_small = loaded(dense[:7], sparse[:7])
    max_diff = (eager - exported).abs().max().item()
    equal = torch.equal(eager, exported) and torch.equal(exported_small, model(dense[:7], sparse[:7]))
    _, held_out_acc = pairwise_loss(c2nn.MarginRankingCriterion(args.margin), eager, clicks,
                                    torch.randperm(512, generator=torch.Generator().manual_seed(1)).to(device))
    k = max(1, min(10, len(losses) // 5))
    metrics = {
        "processes": world, "steps": args.steps, "batch_size_per_process": args.batch_size,
        "first_loss": sum(losses[:k]) / k, "final_loss": sum(losses[-k:]) / k,
        "first_accuracy": sum(accuracies[:k]) / k, "final_accuracy": sum(accuracies[-k:]) / k,
        "held_out_accuracy": held_out_acc.item(), "export_equals_eager": equal, "export_max_abs_diff": max_diff,
        "seconds": elapsed, "losses": losses, "accuracies": accuracies,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"final loss {metrics['final_loss']:.4f} (first {metrics['first_loss']:.4f}), pairwise accuracy "
          f"{metrics['final_accuracy']:.3f} (held out {metrics['held_out_accuracy']:.3f}), {world} process{'es' if world > 1 else ''}, "
          f"{args.steps} steps in {elapsed:.1f}s")
    print(f"torch.export program {'equals' if equal else 'DIFFERS FROM'} eager (max |diff| {max_diff:.3g}); "
          f"wrote {out}/checkpoint.pt, loss.png, ranker.pt2, metrics.json")
    if not equal:
        raise SystemExit("exported program does not score like the eager model")
    return metrics


def plot(losses, accuracies, path, world):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    (loss_line,) = ax.plot(losses, label="pairwise margin loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    (acc_line,) = ax2.plot(accuracies, color="tab:orange", alpha=0.6, label="pairwise accuracy")
    ax2.set_ylabel("accuracy")
    ax.set_title(f"DLRM-style ranker, {world} process{'es' if world > 1 else ''}")
    ax.legend(handles=[loss_line, acc_line], loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    train(parse_args())
