"""Chapter 02's measurement helpers: the cached MiniLM classifier, bucketed batches, sweep, verdict."""
from __future__ import annotations

import json

import pytest
import torch

from dsopt.models import TransformerClassifier, load_minilm_tokenizer
from dsopt.pruning import count_heads
from dsopt.studies.attention_pruning import BucketBatchSampler, fpb_split, sorted_batches, trained_minilm_classifier
from dsopt.stats import Claim, Verdict
from dsopt.studies.attention_pruning.measure import (
    accuracy,
    accuracy_sweep,
    baseline_accuracy,
    best_method,
    choices,
    format_table,
    importances_for,
    largest_fraction_kept,
    summarize,
    verdict_heads,
)
from dsopt.studies.attention_pruning.verdict import claim_verdicts, compute_verdict, render_verdict
from dsopt.util.validation import ParameterError


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


def test_sweep_on_two_splits_summary_and_table():
    model, batches = small_problem()
    imps = importances_for(model, ["gradient", "confidence", "random"], batches, n_random_seeds=2)
    assert isinstance(imps["random"], list) and len(imps["random"]) == 2
    rows = accuracy_sweep(model, batches, imps, [0.25, 0.5], progress=False)
    assert len(rows) == 2 * (1 + 1 + 2) and {r["heads_removed"] for r in rows} == {2, 4}
    split = accuracy_sweep(model, {"val": batches[:1], "test": batches[1:]}, imps, [0.25], progress=False)
    assert all({"val_accuracy", "test_accuracy"} <= set(r) and "accuracy" not in r for r in split)


def run(seed, base_val, base_test, cells):
    """A constructed per-seed run: cells = {(method, fraction): (val_accuracy, test_accuracy)}."""
    rows = [{"method": m, "fraction": f, "heads_removed": int(10 * f), "heads_total": 10, "val_accuracy": v,
             "test_accuracy": t, "heads": {"0": list(range(int(10 * f)))}} for (m, f), (v, t) in cells.items()]
    return {"seed": seed, "baseline": {"val_accuracy": base_val, "test_accuracy": base_test}, "rows": rows}


def runs_ab(test_b04=(0.885, 0.886, 0.884), n=3):
    """Method b keeps 98 % on validation up to 40 % of heads, a only up to 20 %; on test a is better at 20 %."""
    out = []
    for s in range(n):
        out.append(run(s, 0.90, 0.90, {("a", 0.2): (0.889, 0.899), ("a", 0.4): (0.80, 0.89),
                                       ("b", 0.2): (0.80, 0.80), ("b", 0.4): (0.885 + 0.001 * s, test_b04[s])}))
    return out


def test_summarize_pairs_seeds_and_keeps_validation_and_test_apart():
    table = summarize(runs_ab())
    r = next(r for r in table if (r["method"], r["fraction"]) == ("b", 0.4))
    assert r["n_seeds"] == 3 and r["seeds"] == [0, 1, 2] and r["per_seed"]["test_accuracy"] == [0.885, 0.886, 0.884]
    assert r["val_kept"] == pytest.approx(0.886 / 0.9) and r["kept"] == pytest.approx(0.885 / 0.9)
    assert r["per_seed"]["baseline_test_accuracy"] == [0.9, 0.9, 0.9] and baseline_accuracy(table) == pytest.approx(0.9)
    md = format_table(table, 0.9)
    assert md.splitlines()[0] == "| heads removed | a | b |" and "(98.4 %; **test 98.3 %**)" in md and "+-" in md
    one = summarize(runs_ab(n=1))
    assert "(1 seed, sd unknown)" in format_table(one, 0.9)


def test_best_method_is_chosen_on_validation_not_test():
    table = summarize(runs_ab())
    assert largest_fraction_kept(table) == {"a": 0.2, "b": 0.4}
    assert best_method(table) == ("b", 0.4)  # on test, a at 40 % keeps more (98.9 %): not looked at
    assert largest_fraction_kept(table, key="kept") == {"a": 0.4, "b": 0.4}
    heads = verdict_heads(runs_ab()[0], table)
    assert list(heads) == ["best"] and count_heads(heads["best"]) == 4 and list(heads["best"]) == [0]


def lat(flops, base, pruned, label="best"):
    return [{"label": label, "batch_size": 8, "length": 64, "heads_removed": 4, "baseline_ms": base[0],
             "pruned_ms": pruned[0], "baseline_times_ms": list(base), "pruned_times_ms": list(pruned),
             "latency_cut": 1 - pruned[0] / base[0], "flops_cut": flops, "ratio": 1.0, "threads": 1, "device": "cpu"}]


ARTICLE = {"accuracy": 0.6, "rows_kept": 0.0, "threshold": 0.1}


def test_verdict_reports_the_test_accuracy_of_the_validation_choice():
    table = summarize(runs_ab())
    v = compute_verdict(table, lat(0.15, (10, 10.2, 9.9, 10.1, 10), (9.0, 9.1, 8.9, 9.0, 9.1)), {64: 0.35}, ARTICLE)
    assert v["chosen"]["method"] == "b" and v["chosen"]["fraction"] == 0.4
    assert v["kept"]["point"] == pytest.approx(0.885 / 0.9)  # test accuracy of the choice, not the test maximum
    assert v["kept"]["status"] == "supported"  # 98.3 % [98.2, 98.5]: inside "at least 98 %"
    assert v["compute"][0]["status"] == "contradicted"  # about -10 % latency, nowhere near -40 %
    assert v["compute_status"] == "contradicted" and v["status"] == "contradicted"
    assert v["head_pruning_cap_below_claim"]
    text = render_verdict(v)
    stored = json.loads(json.dumps(v, sort_keys=True))  # as stored by save_metrics
    assert render_verdict(stored) == text
    assert render_verdict(stored, fmt="text") == render_verdict(v, fmt="text")
    assert text.startswith("**Claim: '40 % less compute, > 98 % of the accuracy kept' -- contradicted**")
    assert "Chosen on validation: b, the largest" in text and "cannot reach 40 % less compute" in text
    assert "accuracy 60.0 %" in text and "- a: 20 % of heads, test kept" in text
    # one compact table per claim, in the claim's units, every count with its unit (accuracy: seeds, latency: repeats)
    assert "| kept / test | **supported** | 98.3 [" in text and "] % (95 % Fieller" in text and "| 3 seeds |" in text
    assert "| batch 8 x 64 tokens | **contradicted** | -10 [" in text and "| 5 repeats |" in text
    assert "5 seeds" not in text and "<details><summary>Per method" in text
    assert "claimed: financial text classification with a BERT-class encoder; measured: MiniLM" in text
    assert render_verdict(v, provenance="stored runs").startswith("_stored runs_\n\n" + text[:20])


def test_verdict_text_format_has_no_markdown_and_stored_verdicts_name_their_claims():
    table = summarize(runs_ab())
    v = compute_verdict(table, lat(0.15, (10, 10.2, 9.9, 10.1, 10), (9.0, 9.1, 8.9, 9.0, 9.1)), {64: 0.35}, ARTICLE)
    text = render_verdict(v, fmt="text", provenance="computed here")
    assert "**" not in text and "|---|" not in text and "<details>" not in text and "&gt;" not in text
    assert text.startswith("computed here\n\nClaim: '40 % less compute") and "kept / test  supported" in text
    assert "<details>" in render_verdict(v, fmt="html") and "**" not in render_verdict(v, fmt="html")
    cv = claim_verdicts(json.loads(json.dumps(v)))
    assert list(cv) == ["kept / test", "compute / batch 8 x 64 tokens"]
    assert all(isinstance(x, Verdict) for x in cv.values())
    assert [x.status for x in cv.values()] == [v["kept"]["status"], v["compute"][0]["status"]]
    assert cv["kept / test"].unit == "seed" and cv["compute / batch 8 x 64 tokens"].unit == "repeat"
    from dsopt.studies.attention_pruning import STUDY

    assert {k: x.status for k, x in STUDY.claim_verdicts(v).items()} == {k: x.status for k, x in cv.items()}
    assert STUDY.render(v, fmt="text") == render_verdict(v, fmt="text")


def test_verdict_alpha_widens_intervals_and_test_size_sets_the_resolution():
    table = summarize(runs_ab(test_b04=(0.88, 0.89, 0.885)))
    times = lat(0.15, (10, 10.2, 9.9, 10.1, 10), (9.0, 9.1, 8.9, 9.0, 9.1))
    v5 = compute_verdict(table, times, {64: 0.35})
    v1 = compute_verdict(table, times, {64: 0.35}, alpha=0.01)
    for a, b in ((v5["kept"], v1["kept"]), (v5["compute"][0], v1["compute"][0])):
        assert b["interval"]["low"] < a["interval"]["low"] and b["interval"]["high"] > a["interval"]["high"]
        assert b["interval"]["level"] == pytest.approx(0.99)
    assert v5["kept"]["resolution"] == 0 and v5["n_test"] is None  # no n: no resolution invented
    v = compute_verdict(table, times, {64: 0.35}, n_test=200)
    assert v["kept"]["resolution"] == pytest.approx(1 / 200) and v["compute"][0]["resolution"] == 0
    assert "accuracy on 200 test examples" in render_verdict(v)
    from dsopt.studies.attention_pruning import STUDY

    results = {"params": {"article_threshold": 0.1}, "latency": times, "share": {64: 0.35}, "article_accuracy": 0.6,
               "rows_kept": 0.0, "info": {"n_test": 200},
               "study": {"runs": [{**r, "classifier": {"n_test": 200}} for r in runs_ab(test_b04=(0.88, 0.89, 0.885))]}}
    summary = STUDY.summarize(results)
    assert summary["n_test"] == 200 and summary["table"] == table  # n from the runs, never invented
    assert STUDY.summarize({**results, "info": {}, "study": {"runs": runs_ab()}})["n_test"] is None
    assert STUDY.compute(summary, alpha=0.01)["kept"]["interval"] == \
        compute_verdict(table, times, {64: 0.35}, ARTICLE, n_test=200, alpha=0.01)["kept"]["interval"]


def test_verdict_one_seed_is_never_decisive_and_noise_is_not_ignored():
    v = compute_verdict(summarize(runs_ab(n=1)), [], {64: 0.5})
    assert v["kept"]["status"] == "inconclusive" and v["status"] == "inconclusive"
    noisy = compute_verdict(summarize(runs_ab(test_b04=(0.86, 0.91, 0.885))), [], {64: 0.5})
    assert noisy["kept"]["status"] == "inconclusive" and noisy["kept"]["seeds_needed"] is not None


def test_verdict_speed_claim_needs_latency_beyond_noise_and_several_settings_are_holm_corrected():
    table = summarize(runs_ab())
    fast = lat(0.45, (10, 10, 10.1, 9.9, 10), (5.0, 5.1, 4.9, 5.0, 5.2)) + \
        [dict(lat(0.45, (10, 11, 9, 10.5, 9.5), (5.5, 9.8, 5.0, 6.0, 7.5))[0], length=128)]
    v = compute_verdict(table, fast, {64: 0.5, 128: 0.55})
    assert [c["status"] for c in v["compute"]] == ["supported", "inconclusive"]
    assert all("Holm over 2" in c["correction"] for c in v["compute"])
    assert v["compute_status"] == "supported" and v["status"] == "supported"


def test_verdict_when_nothing_keeps_98_percent_on_validation():
    runs = [run(s, 0.9, 0.9, {("a", 0.2): (0.5, 0.5), ("a", 0.4): (0.4, 0.4)}) for s in range(3)]
    v = compute_verdict(summarize(runs), [], {64: 0.35})
    assert v["chosen"]["fraction"] == 0.0 and v["chosen"]["evaluated_fraction"] == 0.2
    assert v["kept"]["status"] == "contradicted" and v["status"] == "contradicted"
    assert "no measured fraction keeps 98 %" in render_verdict(v)
    with pytest.raises(ParameterError, match="kept_claim"):
        compute_verdict(summarize(runs), [], {}, kept_claim=Claim.at_least(0.98, on="level"))


def test_only_the_cells_chosen_on_validation_are_read_on_test():
    runs = runs_ab()
    for r in runs:  # what compare_methods' sweep gives before the test round: validation only
        for x in r["rows"]:
            x.pop("test_accuracy")
    table = summarize(runs)
    assert not any(r["tested"] for r in table) and "kept" not in table[0]
    assert choices(table) == [("a", 0.2), ("b", 0.4)]
    nothing = summarize([run(s, 0.9, 0.9, {("a", 0.2): (0.5, 0.5), ("a", 0.4): (0.4, 0.4)}) for s in range(3)])
    assert choices(nothing) == [("a", 0.2)]  # none keeps 98 %: the smallest fraction of the best method
    for r in runs:
        for x in r["rows"]:
            if (x["method"], x["fraction"]) in choices(table):
                x["test_accuracy"] = 0.88
    table = summarize(runs)
    assert [(r["method"], r["fraction"]) for r in table if r["tested"]] == [("a", 0.2), ("b", 0.4)]
    v = compute_verdict(table, [], {64: 0.35})
    assert v["kept"]["point"] == pytest.approx(0.88 / 0.9) and v["chosen"]["method"] == "b"
    assert "validation accuracy kept: a 88.9 %, b 98.4 %" in render_verdict(v)
