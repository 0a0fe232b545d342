"""Runs every family's benchmark and writes one Markdown report (and a PNG chart of the
native/ours ratios, one bar per thread count, when matplotlib is installed). Every row is
timed with one thread and with all threads; each family also reports its per-call overhead.

    .venv/bin/python benchmarks/run_all.py [--device cpu|cuda] [--size small|large|both] [--out benchmarks/results]
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["batch", "concat_split", "dropout", "sparse_normalize", "margin_rank"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="both", choices=["small", "large", "both"])
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, f"results_{args.device}.md")
    if os.path.exists(md):
        os.remove(md)
    for family in FAMILIES:
        subprocess.run([sys.executable, os.path.join(HERE, f"bench_{family}.py"), "--device", args.device,
                        "--size", args.size, "--markdown", md], check=True, cwd=HERE)
    print(f"\nwritten: {md}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return
    labels, ratios, names = _ratio_rows(open(md).read())
    if not labels:
        return
    import numpy as np

    fig, ax = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.2))
    y = np.arange(len(labels))
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        values = [r[k] for r in ratios]
        ax.barh(y + k * height, values, height, label=name,
                color=["tab:green" if v >= 1 else "tab:red" for v in values], alpha=1.0 - 0.45 * k)
    ax.set_yticks(y + 0.4 - height / 2, labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("native / ours (> 1: torch_caffe2ops is faster); darker bar: " + ", lighter: ".join(names))
    fig.tight_layout()
    png = os.path.join(args.out, f"results_{args.device}.png")
    fig.savefig(png, dpi=100)
    print(f"written: {png}")


def _ratio_rows(text):
    """(row labels, per-row ratios, the thread counts) from the timing tables of the report."""
    labels, ratios, names = [], [], []
    columns = None
    for line in text.splitlines():
        if not line.startswith("| "):
            columns = None if not line.startswith("|") else columns
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("op", "call"):
            columns = [i for i, c in enumerate(cells) if c.startswith("native/ours")]
            counts = [cells[i].replace("native/ours ", "").rstrip("t") for i in columns]
            names = [f"{n} thread" + ("" if n == "1" else "s") for n in counts] if columns else names
            continue
        if columns:
            labels.append(f"{cells[0]} ({cells[1]})")
            ratios.append([float(cells[i].rstrip("x")) for i in columns])
    return labels, ratios, names


if __name__ == "__main__":
    main()
