"""Runs every family's benchmark and writes one Markdown report (and a PNG chart of the
native/ours ratios when matplotlib is installed).

    .venv/bin/python benchmarks/run_all.py [--device cpu|cuda] [--size large] [--out benchmarks/results]
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["batch", "concat_split", "dropout", "sparse_normalize", "margin_rank"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="large")
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
    rows = [r.split("|") for r in open(md).read().splitlines() if r.startswith("| ") and "x |" in r]
    labels = [f"{r[1].strip()} ({r[2].strip()})" for r in rows]
    ratios = [float(re.sub("x", "", r[5])) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1))
    ax.barh(labels, ratios, color=["tab:green" if v >= 1 else "tab:red" for v in ratios])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("native / ours (> 1: torch_caffe2ops is faster)")
    fig.tight_layout()
    png = os.path.join(args.out, f"results_{args.device}.png")
    fig.savefig(png, dpi=100)
    print(f"written: {png}")


if __name__ == "__main__":
    main()
