"""Chapter 05's verdict: reduced precision vs fp32 for speed (interleaved blocks), memory (batches), accuracy (seeds).

Applied to the finished measurements (:mod:`dsopt.studies.mixed_precision`); it never computes a run, so its code
is not part of any run's fingerprint (editing it stales no stored run).
"""
from __future__ import annotations

import numpy as np

from dsopt.precision.memory import max_saving
from dsopt.stats import Claim, Setting, Verdict, assess_all, paired, render_verdicts

#: What the article's "2.3x faster, 40 % less memory" is about (../shared/notes/CLAIMS.md): BERT pre-training with
#: torch.cuda.amp on CUDA GPUs with tensor cores. On a CPU, speed and memory depend on its bf16/fp16 units: the
#: measurement is a fact about that CPU, not a test of the claim ("not testable here").
GPU_SETTING = Setting(device="cuda", text="BERT pre-training with torch.cuda.amp on V100 GPUs (tensor cores)")
#: The article's claims and dsopt's own question, as parameters of :func:`compute`.
SPEED_CLAIM = Claim.at_least(2.3, on="ratio", text="2.3x faster", setting=GPU_SETTING)
MEMORY_CLAIM = Claim.at_most(-0.40, on="relative", text="40 % less memory", setting=GPU_SETTING)
ACCURACY_CLAIM = Claim.between(-0.01, 0.01, on="difference", text="same accuracy (within +-1 point)", scale=100,
                               unit=" points", digits=1)
ANCHORS = ("NVIDIA's published AMP numbers: BERT-large pre-training 3.5-4.25x faster than FP32 on V100, and "
           "1.8-1.9x faster than TF32 on A100 (tensor cores; large batches and sequences).")


def _verdicts(items, alpha):
    out = []
    for v in assess_all(items, alpha=alpha):
        d = v.as_dict()
        d["line"] = v.line()
        out.append(d)
    return out


def compute(table: list[dict], speed: dict, memory: dict, *, baseline: str = "fp32", speed_claim: Claim = SPEED_CLAIM,
            memory_claim: Claim = MEMORY_CLAIM, accuracy_claim: Claim = ACCURACY_CLAIM, alpha: float = 0.05) -> dict:
    """Numbers and a status per claim and mode (JSON-safe), from the quality table, the speed and the memory runs.

    - speed: ``time(fp32) / time(mode)`` per training step, paired over the interleaved repeats of
      :func:`speed_run` (``speed_claim`` on the ratio);
    - memory: relative change of the training step's memory (the device peak on CUDA, else the accounted
      total: parameters + gradients + optimizer state + saved tensors), paired over the measured batches;
    - accuracy (dsopt's question, not the article's): fine-tuned test accuracy minus fp32's, paired over seeds.
    The reduced-precision modes form one family per claim (Holm).
    """
    by = {r["precision"]: r for r in table}
    if baseline not in by:
        raise ValueError(f"the verdict needs the {baseline} baseline in the table; modes present: {', '.join(by)}")
    modes = [m for m in by if m != baseline]
    step = speed["step_ms"]
    dev = str(speed.get("device") or by[baseline].get("device") or "cpu")
    kind = "cuda" if dev.startswith("cuda") else "cpu"
    measured = Setting(device=kind, hardware=(f"CPU ({speed['cpu_capability']})" if kind == "cpu" and
                                             speed.get("cpu_capability") else dev),
                       text=f"masked-LM pre-training of the {speed.get('scale', 'workshop')}-scale encoder")
    # speed: each block runs every mode's steps back to back in a rotating order; the block is the unit
    speed_items = [(paired(step[baseline], step[m], name=m, unit="block"), speed_claim, measured)
                   for m in modes if m in step]
    peak = all(b[m].get("device_peak") is not None for b in memory["batches"] for m in (baseline, *modes))
    part = "device_peak" if peak else "total"
    mem = {m: [b[m][part] for b in memory["batches"]] for m in (baseline, *modes)}
    memory_items = [(paired(mem[m], mem[baseline], name=m, unit="batch", resolution=1.0), memory_claim, measured)
                    for m in modes]  # whole bytes
    acc = {m: by[m]["per_seed"]["test_accuracy"] for m in by}
    n_test = by[baseline].get("n_test")  # an accuracy on n examples moves in steps of 1/n
    acc_items = [(paired(acc[m], acc[baseline], name=m, resolution=1.0 / n_test if n_test else 0.0), accuracy_claim,
                  measured) for m in modes]
    mlm = {m: paired(by[m]["per_seed"]["mlm_val_loss"], by[baseline]["per_seed"]["mlm_val_loss"]) for m in modes}
    mean = memory["mean"]
    numbers = {
        m: {
            "speedup": (float(np.mean(step[baseline]) / np.mean(step[m])) if m in step else None),
            "step_ms": float(np.median(step[m])) if m in step else None,
            "memory_part": part,
            "memory_change": mean[m]["total"] / mean[baseline]["total"] - 1.0,
            "activation_change": mean[m]["activations"] / mean[baseline]["activations"] - 1.0,
            "parameter_copies": mean[m]["parameter_copies"],
            "mlm_val_loss_diff": mlm[m].diff, "mlm_val_loss_interval": mlm[m].interval().as_dict(),
            "skipped_steps": by[m]["skipped_steps"],
        } for m in modes
    }
    return {
        "baseline": baseline, "modes": modes, "alpha": alpha, "device": speed.get("device"),
        "claims": {"speed": speed_claim.as_dict(), "memory": memory_claim.as_dict(),
                   "accuracy": accuracy_claim.as_dict()},
        "speed": dict(zip([m for m in modes if m in step], _verdicts(speed_items, alpha))),
        "memory": dict(zip(modes, _verdicts(memory_items, alpha))),
        "accuracy": dict(zip(modes, _verdicts(acc_items, alpha))),
        "numbers": numbers,
        "baseline_step_ms": float(np.median(step[baseline])),
        "activation_share": mean[baseline]["activations"] / mean[baseline]["total"],
        "max_saving": max_saving(mean[baseline]),
        "load": [speed.get("load_before"), speed.get("load_after")],
        "repeats": speed.get("repeats"), "n_batches": len(memory["batches"]),
        "cpu_capability": speed.get("cpu_capability"),
    }


def claim_verdicts(v: dict) -> dict[str, Verdict]:
    """``{"speed / bf16": Verdict, "memory / bf16": ..., "accuracy / bf16": ...}`` of :func:`compute`'s result."""
    return {f"{key} / {m}": Verdict.from_dict(d) for key in ("speed", "memory", "accuracy")
            for m, d in v[key].items()}


#: What each claim's number is, in words (shown above its table); {base} is the baseline mode.
MEASURES = {
    "speed": "training-step time of {base} / the mode's, masked-LM pre-training steps; each block runs every "
             "mode's steps back to back in a rotating order, so a load change hits all modes alike",
    "memory": "{what}, relative to {base}, paired over batches",
    "accuracy": "dsopt's question, not the article's: fine-tuned test accuracy minus {base}'s, paired over seeds",
}


def render(v: dict, *, provenance: str | None = None, fmt: str = "markdown") -> str:
    """Each claim as one compact table (a row per precision mode), details folded beneath; then where the memory
    goes, the measured step times, and what a CPU says about a GPU claim. ``fmt``: "markdown", "html", "text"."""
    md = fmt != "text"
    base, dev = v["baseline"], v["device"] or "?"
    what = "peak device memory" if any(n["memory_part"] == "device_peak" for n in v["numbers"].values()) else \
        "accounted memory of a training step (parameters + gradients + Adam state + saved tensors)"
    blocks = [provenance and (f"_{provenance}_" if md else provenance)]
    for key, title in (("speed", "Claim"), ("memory", "Claim"), ("accuracy", "dsopt's question")):
        if not v[key]:
            continue
        c = v["claims"][key]
        head = f"{title}: '{c['text']}' ({c['range']})"
        blocks.append((f"**{head}**" if md else head) + ": " + MEASURES[key].format(base=base, what=what) + ".")
        blocks.append(render_verdicts([(m, Verdict.from_dict(d)) for m, d in v[key].items()], fmt=fmt).rstrip())
    share, cap = v["activation_share"], v["max_saving"]
    facts = [f"Where the memory goes: saved activations are {100 * share:.0f} % of the {base} step's memory; "
             f"autocast shrinks at most those (fp32 master weights, gradients and Adam state stay fp32), so the best "
             f"case here is {100 * cap:.0f} % less. '40 % less' needs activations to be at least 80 % of the total."]
    slower = []
    for m, n in v["numbers"].items():
        if n["speedup"] is not None:
            facts.append(f"{m}: {n['speedup']:.2f}x the speed of {base} ({n['step_ms']:.1f} ms vs "
                         f"{v['baseline_step_ms']:.1f} ms per step, median), activations "
                         f"{100 * n['activation_change']:+.0f} %, autocast's saved weight copies "
                         f"{n['parameter_copies'] / 1e6:.2f} MB, {n['skipped_steps']} skipped steps.")
            if n["speedup"] < 1:
                slower.append(m)
    load = ", ".join(f"{x:.1f}" for x in v["load"] if x is not None) or "unknown"
    facts.append(f"Measured on {dev} (vector capability {v.get('cpu_capability') or 'unknown'}), "
                 f"{v['repeats']} blocks, load average {load} before and after.")
    if dev.startswith("cpu") and slower:
        facts.append(f"{' and '.join(slower)} {'is' if len(slower) == 1 else 'are'} slower than {base} on this CPU: "
                     "without bf16/fp16 matrix units (AVX512-BF16, AMX, AVX512-FP16) the 16-bit matmuls run slower "
                     "kernels than fp32's, and autocast adds a cast of every weight and input per step. This is a fact "
                     "about this CPU; it says nothing about a GPU with tensor cores, where the claim was made.")
    facts.append(ANCHORS)
    blocks.append("\n".join(f"- {f}" for f in facts) if md else "\n".join(facts))
    return "\n\n".join(b for b in blocks if b)
