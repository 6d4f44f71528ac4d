"""Chapter 05's study: BERT-style masking, encoder transfer, the verdict on constructed tables, a tiny real run."""
from __future__ import annotations

import math

import pytest
import torch

from dsopt.models import TransformerClassifier
from dsopt.models.masked_lm import IGNORE, MaskedLM, mask_tokens, transfer_encoder
from dsopt.stats import Claim
from dsopt.studies import mixed_precision as mp
from dsopt.studies import mixed_precision_verdict as mpv


# ----------------------------------------------------------------------------------------- masking and transfer
def test_mask_tokens_is_berts_corruption():
    g = torch.Generator().manual_seed(0)
    n, t = 400, 30
    ids = torch.randint(5, 100, (n, t))
    ids[:, 0], ids[:, -1] = 3, 4  # [CLS], [SEP]
    att = torch.ones(n, t, dtype=torch.long)
    att[:, 20:] = 0  # padding
    ids[:, 20:] = 0
    out, labels = mask_tokens(ids, att, mask_id=2, vocab_size=100, special_ids=(3, 4), generator=g, first_random_id=5)
    chosen = labels != IGNORE
    assert not chosen[:, 0].any() and not chosen[:, 20:].any()  # specials and padding never chosen
    assert chosen.any(1).all()  # every row predicts something
    assert torch.equal(labels[chosen], ids[chosen])
    frac = chosen.sum().item() / (n * 19)
    assert 0.14 < frac < 0.17
    masked = (out == 2) & chosen
    kept = (out == ids) & chosen
    assert 0.75 < masked.sum() / chosen.sum() < 0.85 and 0.07 < kept.sum() / chosen.sum() < 0.14
    assert torch.equal(out[~chosen], ids[~chosen])
    again = mask_tokens(ids, att, mask_id=2, vocab_size=100, special_ids=(3, 4),
                        generator=torch.Generator().manual_seed(0), first_random_id=5)
    assert torch.equal(again[0], out) and torch.equal(again[1], labels)  # seeded: the same masks for every mode


def test_masked_lm_scores_only_masked_positions_and_transfers_its_encoder():
    torch.manual_seed(0)
    mlm = MaskedLM(vocab_size=50, n_tokens_max=16, d_model=16, n_layers=1, n_heads=2, d_ff=32).eval()
    ids = torch.randint(0, 50, (3, 10))
    masked = torch.zeros(3, 10, dtype=torch.bool)
    masked[0, 2] = masked[2, 7] = True
    part = mlm(ids, masked=masked)
    full = mlm(ids)
    assert part.shape == (2, 50) and torch.allclose(part, full[masked], atol=1e-6)
    clf = transfer_encoder(mlm, TransformerClassifier(vocab_size=50, n_tokens_max=16, d_model=16, n_layers=1, n_heads=2,
                                                      d_ff=32, n_classes=3))
    assert torch.equal(clf.embed.weight, mlm.embed.weight) and torch.equal(clf.blocks[0].ffn[0].weight,
                                                                           mlm.blocks[0].ffn[0].weight)
    with pytest.raises(ValueError, match="encoder transfer mismatch"):
        transfer_encoder(mlm, TransformerClassifier(vocab_size=50, n_tokens_max=16, d_model=16, n_layers=2, n_heads=2,
                                                    d_ff=32, n_classes=3))


# ----------------------------------------------------------------------------------------- verdict
def table(acc: dict[str, list[float]], n_test: int | None = 270) -> list[dict]:
    rows = []
    for mode, values in acc.items():
        per = {str(s): v for s, v in enumerate(values)}
        rows.append({"precision": mode, "n_seeds": len(values), "device": "cpu", "skipped_steps": 0, "steps": 10,
                     "n_test": n_test,
                     "per_seed": {"test_accuracy": per, "mlm_val_loss": {s: 7.0 + v for s, v in per.items()}}})
    return rows


def memory(totals: dict[str, list[float]], activations: dict[str, float]) -> dict:
    n = len(next(iter(totals.values())))
    batches = [{m: {"total": v[i], "device_peak": None} for m, v in totals.items()} for i in range(n)]
    mean = {m: {"total": sum(v) / len(v), "activations": activations[m], "parameter_copies": 0.0}
            for m, v in totals.items()}
    return {"batches": batches, "mean": mean}


def speed(ms: dict[str, list[float]], device: str = "cpu") -> dict:
    return {"step_ms": ms, "device": device, "repeats": len(ms["fp32"]), "load_before": 1.0, "load_after": 1.5,
            "cpu_capability": "AVX2"}


def test_verdict_on_a_cpu_is_not_testable_here_and_on_cuda_slower_is_contradicted():
    """The article's 2.3x / -40 % are about CUDA GPUs: a CPU measurement is shown as a fact, never a refutation."""
    args = (table({"fp32": [0.80, 0.82, 0.81], "bf16": [0.805, 0.81, 0.815]}),
            speed({"fp32": [100.0, 104.0, 98.0, 101.0], "bf16": [300.0, 320.0, 290.0, 305.0]}),
            memory({"fp32": [100.0, 120.0, 110.0], "bf16": [90.0, 108.0, 99.0]}, {"fp32": 60.0, "bf16": 45.0}))
    v = mpv.compute(*args)
    assert v["speed"]["bf16"]["status"] == v["memory"]["bf16"]["status"] == "not testable here"
    assert v["speed"]["bf16"]["point"] == pytest.approx(403 / 1215) and v["speed"]["bf16"]["unit"] == "block"
    assert "cuda" in v["speed"]["bf16"]["reason"] and "cpu" in v["speed"]["bf16"]["reason"]
    assert v["numbers"]["bf16"]["speedup"] == pytest.approx(403 / 1215)
    assert v["numbers"]["bf16"]["memory_change"] == pytest.approx(-0.10)
    assert v["max_saving"] == pytest.approx(0.5 * 60 / 110)
    text = mpv.render(v)
    assert text.index("**not testable here**") < text.index("Where the memory goes") and "4 blocks" in text
    assert "slower than fp32 on this CPU" in text and "vector capability AVX2" in text and "NVIDIA" in text
    assert "load average 1.0, 1.5" in text and "contradicted" not in text
    gpu = mpv.compute(args[0], {**args[1], "device": "cuda:0"}, args[2])
    assert gpu["speed"]["bf16"]["status"] == "contradicted" and gpu["memory"]["bf16"]["status"] == "contradicted"
    plain = mpv.render(v, fmt="text")
    assert "**" not in plain and "|---|" not in plain and "<details>" not in plain
    cv = mpv.claim_verdicts(v)
    assert cv["speed / bf16"].status == "not testable here" and cv["accuracy / bf16"].status == \
        v["accuracy"]["bf16"]["status"]


def test_verdict_fast_and_small_is_supported_and_two_seeds_never_decide():
    v = mpv.compute(table({"fp32": [0.80, 0.82, 0.81], "fp16": [0.80, 0.82, 0.81]}),
                   speed({"fp32": [250.0, 260.0, 240.0], "fp16": [80.0, 84.0, 78.0]}, device="cuda:0"),
                   memory({"fp32": [100.0, 120.0, 110.0], "fp16": [50.0, 60.0, 55.0]}, {"fp32": 100.0, "fp16": 50.0}))
    assert v["speed"]["fp16"]["status"] == "supported" and v["memory"]["fp16"]["status"] == "supported"
    # identical seeds, each accuracy known to 1/270: the interval is +-0.4 points wide, inside +-1 point
    assert v["accuracy"]["fp16"]["status"] == "supported" and v["accuracy"]["fp16"]["equal_within_resolution"]
    bare = mpv.compute(table({"fp32": [0.80, 0.82, 0.81], "fp16": [0.80, 0.82, 0.81]}, n_test=None),
                       speed({"fp32": [250.0, 260.0, 240.0], "fp16": [80.0, 84.0, 78.0]}),
                       memory({"fp32": [100.0, 120.0, 110.0], "fp16": [50.0, 60.0, 55.0]}, {"fp32": 100.0, "fp16": 50.0}))
    assert bare["accuracy"]["fp16"]["status"] == "inconclusive"  # three zeros without a resolution: zero width
    two = mpv.compute(table({"fp32": [0.80, 0.82], "fp16": [0.80, 0.82]}),
                     speed({"fp32": [250.0, 260.0], "fp16": [80.0, 84.0]}, device="cuda"),
                     memory({"fp32": [100.0, 120.0], "fp16": [50.0, 60.0]}, {"fp32": 100.0, "fp16": 50.0}))
    assert {two[k]["fp16"]["status"] for k in ("speed", "memory", "accuracy")} == {"inconclusive"}


def test_verdict_claims_are_parameters_and_modes_form_a_holm_family():
    tbl = table({"fp32": [0.80, 0.82, 0.81], "bf16": [0.79, 0.83, 0.80], "fp16": [0.81, 0.80, 0.82]})
    sp = speed({"fp32": [100.0, 101.0, 99.0], "bf16": [60.0, 61.0, 59.0], "fp16": [45.0, 46.0, 44.0]})
    mem = memory({"fp32": [100.0, 101.0, 99.0], "bf16": [70.0, 71.0, 69.0], "fp16": [70.0, 71.0, 69.0]},
                 {"fp32": 60.0, "bf16": 30.0, "fp16": 30.0})
    v = mpv.compute(tbl, {**sp, "device": "cuda"}, mem, speed_claim=Claim.at_least(1.5, on="ratio", text="1.5x"))
    assert v["claims"]["speed"]["text"] == "1.5x" and v["modes"] == ["bf16", "fp16"]
    assert v["speed"]["bf16"]["status"] == "supported" and v["speed"]["fp16"]["status"] == "supported"
    assert "Holm" in (v["speed"]["fp16"]["correction"] or "")
    with pytest.raises(ValueError, match="needs the fp32 baseline"):
        mpv.compute([r for r in tbl if r["precision"] != "fp32"], sp, mem)


def test_summarize_keeps_per_seed_values():
    runs = [{"precision": m, "seed": s, "device": "cpu", "mlm_val_loss": 7.0 + s, "mlm_val_accuracy": 0.1,
             "test_accuracy": 0.8 + 0.01 * s, "finetune_val_accuracy": 0.79, "pretrain_overflows": int(m == "fp16"),
             "finetune_overflows": 0, "pretrain_steps": 5} for m in ("fp32", "fp16") for s in (0, 1, 2)]
    rows = mp.summarize(runs)
    assert [r["precision"] for r in rows] == ["fp32", "fp16"]
    assert rows[0]["per_seed"]["test_accuracy"] == pytest.approx({"0": 0.8, "1": 0.81, "2": 0.82})
    assert rows[0]["test_accuracy"] == pytest.approx(0.81) and rows[1]["skipped_steps"] == 3
    assert math.isnan(mp.summarize(runs[:1])[0]["test_accuracy_sd"])  # one seed: sd is nan, never 0


# ----------------------------------------------------------------------------------------- real data, tiny scale
@pytest.mark.data("sst2", "financial_phrasebank")
def test_tiny_run_on_real_data():
    r = mp.run_one("bf16", seed=0, scale="tiny", numerics=True)
    assert r["pretrain_steps"] == 8 and r["device"] == "cpu"
    assert math.isfinite(r["mlm_val_loss"]) and 0 <= r["test_accuracy"] <= 1
    fp16 = r["numerics"]["activations"]["fp16"]
    assert [x["scale"] for x in fp16] == [1.0, 256.0, 65536.0]
    assert fp16[0]["underflow"] >= fp16[1]["underflow"] >= fp16[2]["underflow"]  # scaling lifts gradients in
    data = mp.study_data("tiny")
    assert data.pretrain["train"][0].shape[0] == 256 and data.finetune["train"][0].shape[0] == 240
    mem = mp.memory_run(["fp32", "bf16"], scale="tiny", n_batches=2)
    for b in mem["batches"]:
        assert b["bf16"]["parameters"] == b["fp32"]["parameters"]
        assert b["bf16"]["activations"] < b["fp32"]["activations"]
