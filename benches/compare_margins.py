#!/usr/bin/env python3
"""Compares a `blindspot margins` run with benches/hold_me_tight_reference.py on the same
samples: per-sample relative margin differences for samples both sides call converged, status
agreement, and the two run times.

    /tmp/venv/bin/python benches/compare_margins.py --run runs/margins_resnet20 --reference reference.json
"""

import argparse
import json

import numpy as np
from safetensors.numpy import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--tolerance", type=float, default=0.01)
    args = ap.parse_args()
    ours = load_file(f"{args.run}/margins.safetensors")
    config = json.load(open(f"{args.run}/config.json"))
    ref = json.load(open(args.reference))
    rm = np.array(ref["margins"])
    # The reference may cover only the first samples of the run (--limit).
    count = rm.shape[1]
    m, status, it = ours["margins"][:, :count].astype(np.float64), ours["status"][:, :count], ours["iterations"][:, :count]
    rc = np.array(ref["converged"])
    ri = np.array(ref["iterations"])
    both = (status == 0) & rc
    rel = np.abs(m - rm) / np.maximum(rm, 1e-12)
    within = rel[both] <= args.tolerance
    print(f"samples x subspaces: {m.size}; converged in both: {both.sum()}; ours only: {((status == 0) & ~rc).sum()}; reference only: {((status != 0) & rc).sum()}")
    print(f"within {args.tolerance:.0%} (converged in both): {within.sum()}/{both.sum()}")
    print(f"relative difference over converged pairs: median {np.median(rel[both]):.2e}, max {rel[both].max():.2e}")
    print(f"same iteration count: {(it == ri).sum()}/{m.size}")
    worst = np.argsort(-np.where(both, rel, -1).ravel())[:5]
    for k in worst:
        s, n = divmod(int(k), m.shape[1])
        print(f"  s={s} sample={n}: ours {m[s, n]:.6f} ({it[s, n]} it) reference {rm[s, n]:.6f} ({ri[s, n]} it)")
    print("per-subspace median  ours / reference:")
    for s in range(m.shape[0]):
        print(f"  {s:2d}: {np.median(m[s]):.4f} / {np.median(rm[s]):.4f}")
    print(f"time: ours {config['models'][0]['seconds']:.1f} s for {config['samples']} samples, reference {ref['seconds']:.1f} s for {count} (torch threads {ref['torch_threads']})")
    print(json.dumps({"converged_both": int(both.sum()), "within": int(within.sum()), "max_rel": float(rel[both].max()),
                      "ours_s": config["models"][0]["seconds"], "reference_s": ref["seconds"]}))


if __name__ == "__main__":
    main()
