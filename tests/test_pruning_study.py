"""Chapter 02's measurement helpers: the cached MiniLM classifier, bucketed batches, sweep, verdict."""
from __future__ import annotations

import pytest
import torch

from dsopt.models import TransformerClassifier, load_minilm_tokenizer
from dsopt.pruning import count_heads
from dsopt.studies.attention_pruning import BucketBatchSampler, fpb_split, sorted_batches, trained_minilm_classifier
from dsopt.studies.attention_pruning.measure import (
    accuracy,
    accuracy_sweep,
    best_method,
    format_table,
    importances_for,
    largest_fraction_kept,
    summarize,
    verdict_heads,
)
from dsopt.studies.attention_pruning.verdict import verdict


def test_bucket_sampler_covers_every_index_once_reproducibly():
    lengths = [5, 9, 3, 7, 2, 8, 6, 1, 4, 10, 11]
    s = BucketBatchSampler(lengths, batch_size=2, bucket=2, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 6
    assert sorted(i for b in batches for i in b) == list(range(11))
    assert batches == list(BucketBatchSampler(lengths, 2, 2, seed=0)) and list(s) != batches  # new epoch, new order


def test_sorted_batches_have_little_padding():
    tok = load_minilm_tokenizer()
    texts, y = fpb_split("val", "tiny")
    batches = sorted_batches(texts, y, tok, batch_size=16, max_length=32)
    assert sum(len(t) for _, t in batches) == len(texts) == 96
    widths = [inp["input_ids"].shape[1] for inp, _ in batches]
    assert widths == sorted(widths)
    assert sorted(torch.cat([t for _, t in batches]).tolist()) == sorted(y.tolist())


@pytest.mark.parametrize("epochs", [0, 1])
def test_trained_minilm_classifier_is_cached(tmp_path, epochs):
    first = trained_minilm_classifier(scale="tiny", epochs=epochs, cache_dir=tmp_path, progress=False)
    info = first.info
    assert not info["cached"] and (info["n_train"], info["n_val"], info["n_test"]) == (240, 96, 96)
    assert 0.5 < info["probe_val_accuracy"] <= 1 and 0 <= info["test_accuracy"] <= 1 and info["epochs"] == epochs
    assert len(list(tmp_path.iterdir())) == 1
    again = trained_minilm_classifier(scale="tiny", epochs=epochs, cache_dir=tmp_path, progress=False)
    assert again.info["cached"] and again.info["test_accuracy"] == info["test_accuracy"]
    for (n, p), (_, q) in zip(first.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(p, q), n
    assert accuracy(again.model, again.test_batches) == info["test_accuracy"]


def small_problem():
    torch.manual_seed(0)
    model = TransformerClassifier(patch_dim=4, n_tokens_max=16, d_model=16, n_layers=2, n_heads=4, d_ff=32,
                                  n_classes=3, dropout=0.0).eval()
    x = torch.rand(40, 16, 4)
    with torch.no_grad():
        y = model(patches=x).argmax(1)  # the model is right on every example: accuracy 1 unpruned
    return model, [({"patches": x[:20]}, y[:20]), ({"patches": x[20:]}, y[20:])]


def test_sweep_summary_and_table():
    model, batches = small_problem()
    imps = importances_for(model, ["gradient", "confidence", "random"], batches, n_random_seeds=2)
    assert isinstance(imps["random"], list) and len(imps["random"]) == 2
    rows = accuracy_sweep(model, batches, imps, [0.25, 0.5], progress=False)
    assert len(rows) == 2 * (1 + 1 + 2) and {r["heads_removed"] for r in rows} == {2, 4}
    table = summarize(rows, accuracy(model, batches))
    rnd = [r for r in table if r["method"] == "random"]
    assert all(r["n_seeds"] == 2 for r in rnd) and len(table) == 6
    assert all(r["kept"] == pytest.approx(r["accuracy"]) for r in table)  # baseline accuracy is 1
    md = format_table(table, 1.0)
    assert md.splitlines()[0] == "| heads removed | gradient | confidence | random |"
    assert "| 2/8 (25 %) |" in md and "+-" in md


TABLE = [
    {"method": "a", "fraction": 0.2, "heads_removed": 2, "heads_total": 10, "n_seeds": 1, "accuracy": 0.89, "accuracy_sd": 0, "kept": 0.989},
    {"method": "a", "fraction": 0.4, "heads_removed": 4, "heads_total": 10, "n_seeds": 1, "accuracy": 0.80, "accuracy_sd": 0, "kept": 0.889},
    {"method": "b", "fraction": 0.2, "heads_removed": 2, "heads_total": 10, "n_seeds": 1, "accuracy": 0.80, "accuracy_sd": 0, "kept": 0.889},
    {"method": "b", "fraction": 0.4, "heads_removed": 4, "heads_total": 10, "n_seeds": 1, "accuracy": 0.885, "accuracy_sd": 0, "kept": 0.983},
]


def lat(flops, latency):
    return [{"label": "best", "batch_size": 8, "length": 64, "heads_removed": 4, "baseline_ms": 10.0, "pruned_ms": 5.0,
             "latency_cut": latency, "flops_cut": flops, "ratio": latency / flops, "threads": 1, "device": "cpu"}]


def test_best_method_and_heads_to_time():
    assert largest_fraction_kept(TABLE) == {"a": 0.2, "b": 0.4}
    assert best_method(TABLE) == ("b", 0.4)
    rows = [{"method": m, "seed": 0, "fraction": f, "heads": {0: list(range(int(10 * f)))}} for m in "ab" for f in (0.2, 0.4)]
    heads = verdict_heads(rows, TABLE)
    assert list(heads) == ["best"] and count_heads(heads["best"]) == 4


def test_verdict_is_computed_from_the_measurements():
    v = verdict(TABLE, 0.9, lat(0.15, 0.10), {64: 0.35}, {"accuracy": 0.6, "rows_kept": 0.0, "threshold": 0.1})
    assert not v["holds"] and v["best_method"] == "b" and v["best_fraction"] == 0.4
    text = v["text"]
    assert "keeping 98 % of it means >= 88.2 %" in text
    assert "removes 4/10 heads (40 %) at test accuracy 88.5 % (98.3 % kept)" in text
    assert "whole-model FLOPs by 15 %" in text and "-10 %" in text
    assert "cannot reach 40 % less compute" in text and "accuracy 60.0 %" in text
    assert text.endswith("'-40 % compute, > 98 % accuracy kept': not supported by these measurements.")
    assert verdict(TABLE, 0.9, lat(0.45, 0.41), {64: 0.5})["holds"]
    assert not verdict(TABLE, 0.9, lat(0.45, 0.30), {64: 0.5})["holds"]  # FLOPs alone are not compute saved
    none = verdict([dict(r, kept=0.5) for r in TABLE], 0.9, [], {})
    assert not none["holds"] and "No method keeps 98 %" in none["text"]
