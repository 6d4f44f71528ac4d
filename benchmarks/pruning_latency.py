"""Chapter 02 target: measured latency reduction of structurally pruned MiniLM vs the cost model's ideal.

For 25 / 50 / 75 % of heads removed (the same share from every layer: latency depends on how many
heads a layer keeps, not which), at batch 64 x length 64 and 64 x 128, on CPU: latency reduction
(median of repeats, baseline and pruned models interleaved in the same run) divided by the cost
model's whole-model FLOPs reduction. 1.0 = pruning pays off exactly as FLOPs promise (target >= 0.8).
Run: python benchmarks/pruning_latency.py [--threads 1] [--repeats 7] [--lengths 64 128]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from dsopt.models import MiniLMClassifier, load_minilm
from dsopt.pruning import compare_latency, model_cost, pruned_copy, random_importance, reduction, select_heads

import report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = MiniLMClassifier(load_minilm(), n_classes=3).eval()
    imp = random_importance(model, 0)
    pruned = {f: pruned_copy(model, select_heads(imp, fraction=f, per_layer=True)) for f in args.fractions}
    print(f"MiniLM classifier on CPU, batch {args.batch}, {args.threads} thread(s), median of {args.repeats} repeats "
          f"after {args.warmup} warm-up, models interleaved; load average at start {os.getloadavg()[0]:.1f}")
    worst = float("inf")
    for T in args.lengths:
        lat = compare_latency({"baseline": model, **{f"{f:.0%}": m for f, m in pruned.items()}}, args.batch, T,
                              repeats=args.repeats, warmup=args.warmup, threads=args.threads)
        base = lat["baseline"].median_s
        print(f"\nlength {T}: baseline {1000 * base:.0f} ms")
        for f, m in pruned.items():
            cut = 1 - lat[f"{f:.0%}"].median_s / base
            ideal = reduction(model_cost(model, args.batch, T), model_cost(m, args.batch, T))["total_flops"]
            worst = min(worst, cut / ideal)
            print(f"  {f:.0%} heads removed: {1000 * lat[f'{f:.0%}'].median_s:.0f} ms, latency -{100 * cut:.1f} %, "
                  f"FLOPs -{100 * ideal:.1f} % -> measured / ideal = {cut / ideal:.2f}  (target >= 0.8)")
            # compare_latency interleaves the models within each repeat: pair repeat i of both
            per = [(1 - p / b) / ideal for p, b in zip(lat[f"{f:.0%}"].times_s, lat["baseline"].times_s)]
            report.record("pruning_latency", f"{f:.0%} heads, length {T}: latency cut / FLOPs cut",
                          baseline=(100 * ideal, "% cut", "cost model's FLOPs reduction"),
                          measured=(100 * cut, "% cut", f"latency reduction, medians of {args.repeats}"),
                          ratio=cut / ideal, target=">= 0.8", repeats=per)
    print(f"\nworst ratio {worst:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
