"""Head pruning: masks and removal agree, the article's rule, importance orderings, selection, cost, latency."""
from __future__ import annotations

import copy
import statistics

import pytest
import torch

from dsopt.models import MiniLMClassifier, TransformerClassifier, encode_texts, load_minilm, load_minilm_tokenizer
from dsopt.pruning import (
    METHODS,
    apply_article_rule,
    apply_head_mask,
    article_keep_mask,
    article_rule,
    article_statistic,
    compare_latency,
    count_heads,
    gates,
    head_counts,
    head_importance,
    masked,
    measure_latency,
    model_cost,
    pruned_copy,
    random_importance,
    reduction,
    remove_heads,
    removed_heads,
    restore_gates,
    rule_keeps,
    select_heads,
)
from dsopt.pruning.article import rule_on_random_attention
from dsopt.util.validation import ParameterError

SENTENCES = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
    "The company's shares fell 3 % after the profit warning.",
    "Nokia will cut 1,000 jobs in Finland.",
    "Net loss widened to EUR 4.2 million.",
]


@pytest.fixture(scope="module")
def text_batch():
    return encode_texts(SENTENCES, load_minilm_tokenizer())


@pytest.fixture(scope="module")
def minilm_clf():
    torch.manual_seed(0)
    return MiniLMClassifier(load_minilm(), n_classes=3).eval()


def small_model(vocab=30522, **kw) -> TransformerClassifier:
    torch.manual_seed(0)
    kw = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "dropout": 0.0, **kw}
    return TransformerClassifier(vocab_size=vocab, n_classes=3, n_tokens_max=64, **kw).eval()


def run(model, batch):
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"])


def batches_of(batch, y=(0, 1, 2, 0)):
    return [(dict(batch), torch.tensor(y))]


# ------------------------------------------------------------------ masking == structural removal


@pytest.mark.parametrize("which", ["small", "minilm"])
def test_masked_and_structurally_pruned_agree(which, text_batch, minilm_clf):
    model = small_model() if which == "small" else copy.deepcopy(minilm_clf)
    before = run(model, text_batch)
    heads = select_heads(random_importance(model, seed=3), fraction=0.5)
    assert count_heads(heads) == sum(a.n_heads for a in model.attention_layers()) // 2
    with masked(model, heads):
        soft = run(model, text_batch)
    assert torch.equal(run(model, text_batch), before)  # the context manager restored every gate
    pruned = pruned_copy(model, heads)
    assert (soft - run(pruned, text_batch)).abs().max().item() <= 1e-5
    assert removed_heads(pruned) == heads and removed_heads(model) == {}
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    # explicit apply / restore, and a second mask on top of the first is undone exactly
    saved = apply_head_mask(model, heads)
    inner = apply_head_mask(model, {0: [0]})
    restore_gates(model, inner)
    assert (run(model, text_batch) - soft).abs().max().item() <= 1e-6
    restore_gates(model, saved)
    assert all(torch.equal(g, torch.ones_like(g)) for g in gates(model))


def test_mask_uses_original_indices_after_removal(text_batch):
    model = small_model()
    remove_heads(model, {1: [0, 2]})  # layer 1 keeps original heads 1 and 3
    ref = pruned_copy(model, {1: [3]})
    with masked(model, {1: [0, 3]}):  # head 0 is gone already: ignored
        assert (run(model, text_batch) - run(ref, text_batch)).abs().max().item() <= 1e-6
        assert model.attention_layers()[1].head_gate.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="heads were removed since"):
        saved = gates(model)
        remove_heads(model, {1: [1]})
        restore_gates(model, saved)


def test_head_set_validation_names_the_parameter():
    model = small_model()
    with pytest.raises(ParameterError, match=r"layer must be an integer in \[0, 1\]; got 2"):
        apply_head_mask(model, {2: [0]})
    with pytest.raises(ParameterError, match=r"heads must be an integer in \[0, 3\]; got 4"):
        remove_heads(model, {0: [4]})


# ------------------------------------------------------------------ every head of a layer


@pytest.mark.parametrize("which", ["small", "minilm"])
def test_pruning_every_head_of_a_layer(which, text_batch, minilm_clf):
    model = small_model() if which == "small" else copy.deepcopy(minilm_clf)
    H = model.attention_layers()[0].n_heads
    all_heads = {0: list(range(H))}
    n_params = sum(p.numel() for p in model.parameters())
    with pytest.raises(ParameterError, match="every head of layer 0.*allow_empty_layers"):
        remove_heads(model, all_heads)
    assert head_counts(model)[0] == H and sum(p.numel() for p in model.parameters()) == n_params  # untouched
    with masked(model, all_heads):
        soft = run(model, text_batch)
    removed = remove_heads(model, all_heads, allow_empty_layers=True)
    assert removed == all_heads and head_counts(model)[0] == 0 and removed_heads(model) == all_heads
    hard = run(model, text_batch)
    assert torch.isfinite(hard).all() and (soft - hard).abs().max().item() <= 1e-5
    # scoring a model with an empty layer: NaN for the removed heads, numbers for the others
    imp = head_importance(model, "gradient", batches_of(text_batch))
    assert torch.isnan(imp[0]).all() and torch.isfinite(imp[1]).all()
    stats = head_importance(model, "confidence", batches_of(text_batch))
    assert torch.isnan(stats[0]).all() and torch.isfinite(stats[1]).all()


# ------------------------------------------------------------------ the article's rule


def test_article_rule_equals_length_below_ten_on_random_attention():
    g = torch.Generator().manual_seed(0)
    for L in [n for n in range(1, 41) if n != 10]:  # at L = 10 the statistic equals 0.1 up to rounding
        probs = (4 * torch.randn(3, 5, L, L, generator=g)).softmax(-1)
        stat = article_statistic(probs)
        assert stat.shape == (3, 5, L)  # [batch, heads, queries]: rows, not heads
        assert (stat - 1 / L).abs().max() < 1e-6
        keep = article_keep_mask(probs, 0.1)
        assert bool(keep.all()) == (L < 10) and bool((~keep).all()) == (L >= 10)
        assert rule_keeps(L, 0.1) == (L < 10)
        ruled = apply_article_rule(probs, 0.1)
        assert torch.equal(ruled, probs if L < 10 else torch.zeros_like(probs))
    assert all(d["one_over_L_above"] == (d["keeps"] == 1.0) for d in rule_on_random_attention(range(2, 30)))


def test_article_statistic_counts_padding_in_L():
    from dsopt.models import additive_mask

    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]])  # 3 real tokens padded to 12
    scores = torch.randn(1, 2, 12, 12) + additive_mask(mask, torch.float32)
    stat = article_statistic(scores.softmax(-1))
    assert torch.allclose(stat, torch.full_like(stat, 1 / 12))  # 1/12, not 1/3: the rule drops the row


def test_article_rule_inside_the_model_is_literal(text_batch):
    model = small_model()
    base = run(model, text_batch)
    with article_rule(model, threshold=0.0) as log:  # 1/L > 0 keeps every row
        assert (run(model, text_batch) - base).abs().max().item() <= 1e-5
    assert log.kept_fraction == 1.0
    assert all("forward" not in vars(a) for a in model.attention_layers())  # class forward is back
    L = text_batch["input_ids"].shape[1]
    assert L > 10
    every = {i: list(range(a.n_heads)) for i, a in enumerate(model.attention_layers())}
    with masked(model, every):
        no_attention = run(model, text_batch)
    with article_rule(model, threshold=0.1) as log:
        out = run(model, text_batch)
    assert log.rows_kept == 0 and log.rows_seen == 2 * 4 * 4 * L
    assert (out - no_attention).abs().max().item() <= 1e-6  # every row zeroed == every head off
    short = {k: v[:, :6] for k, v in text_batch.items()}
    with article_rule(model, threshold=0.1) as log:
        assert (run(model, short) - run(copy.deepcopy(model), short)).abs().max().item() <= 1e-5
    assert log.kept_fraction == 1.0


# ------------------------------------------------------------------ importance on constructed models


def _head_slice(a, h):
    return slice(h * a.head_dim, (h + 1) * a.head_dim)


def test_gradient_importance_ranks_a_dead_head_last_and_matches_autograd(text_batch):
    model = small_model()
    a = model.attention_layers()[0]
    with torch.no_grad():
        a.o.weight[:, _head_slice(a, 2)] = 0.0  # head (0, 2) can no longer change anything
    batches = batches_of(text_batch)
    imp = head_importance(model, "gradient", batches)
    assert imp.shape == (2, 4) and imp[0, 2] == 0 and (imp[0, [0, 1, 3]] > 0).all()
    assert select_heads(imp, fraction=1 / 8) == {0: [2]}
    # equals |dL/dgate| computed by hand, and leaves no trace on the model
    for layer in model.attention_layers():
        layer.head_gate.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(**batches[0][0]), batches[0][1])
    grads = torch.autograd.grad(loss, [layer.head_gate for layer in model.attention_layers()])
    for layer in model.attention_layers():
        layer.head_gate.requires_grad_(False)
    raw = torch.stack(grads).abs().double()
    assert torch.allclose(head_importance(model, "gradient", batches, normalize_by_layer=False), raw, atol=1e-9)
    # the default divides each layer by its L2 norm (Michel et al.'s code, bertology's default)
    assert torch.allclose(imp, raw / raw.norm(dim=1, keepdim=True), atol=1e-9)
    assert torch.allclose(imp.norm(dim=1), torch.ones(2, dtype=torch.float64))
    model2 = small_model()
    head_importance(model2, "gradient", batches)
    assert all(p.requires_grad for p in model2.parameters())
    assert all(not a.head_gate.requires_grad and a.head_gate.grad is None for a in model2.attention_layers())


def test_layer_normalisation_changes_a_global_ranking_across_layers(text_batch):
    """A layer whose gates all matter 10x less keeps its internal order but is no longer ranked wholesale last."""
    model = small_model()
    batches = batches_of(text_batch)
    raw = head_importance(model, "gradient", batches, normalize_by_layer=False)
    with torch.no_grad():  # scale layer 1's contribution down: its raw scores shrink, its normalised ones do not
        model.attention_layers()[1].o.weight.mul_(0.1)
    raw_small = head_importance(model, "gradient", batches, normalize_by_layer=False)
    norm_small = head_importance(model, "gradient", batches)
    assert (raw_small[1].max() < raw_small[0].min()) or (raw_small[1].mean() < raw[1].mean())
    assert torch.allclose(norm_small.norm(dim=1), torch.ones(2, dtype=torch.float64))
    assert torch.equal(raw_small[1].argsort(), norm_small[1].argsort())  # within a layer the order is unchanged
    removed = select_heads(norm_small, fraction=0.5)
    assert len(removed) == 2  # both layers lose heads once each layer is on the same scale


def test_entropy_and_confidence_rank_uniform_head_last_and_sharp_head_first(text_batch):
    model = small_model()
    a = model.attention_layers()[0]
    with torch.no_grad():
        a.q.weight[_head_slice(a, 0)] = 0.0  # head 0: all scores equal -> uniform attention
        a.q.bias[_head_slice(a, 0)] = 0.0
        a.q.weight[_head_slice(a, 3)] *= 300.0  # head 3: huge scores -> (nearly) one-hot attention
    batches = batches_of(text_batch)
    conf = head_importance(model, "confidence", batches)
    ent = head_importance(model, "entropy", batches)
    assert conf[0].argmin() == 0 and conf[0].argmax() == 3 and conf[0, 3] > 0.5
    assert ent[0].argmin() == 0 and ent[0].argmax() == 3
    real = text_batch["attention_mask"].sum(1).double()
    assert torch.isclose(conf[0, 0], (1 / real * real).sum() / real.sum())  # uniform over the real keys
    assert torch.isclose(-ent[0, 0], (real.log() * real).sum() / real.sum())  # entropy log(real length)
    art = head_importance(model, "article", batches)
    assert torch.allclose(art, torch.full_like(art, 1 / text_batch["input_ids"].shape[1]))  # 1/L for every head


def test_random_importance_is_seeded_and_marks_removed_heads():
    model = small_model()
    a, b = random_importance(model, 1), random_importance(model, 1)
    assert torch.equal(a, b) and not torch.equal(a, random_importance(model, 2))
    state = torch.get_rng_state()
    remove_heads(model, {1: [0, 3]})
    r = head_importance(model, "random", seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not touched
    assert torch.isnan(r[1, [0, 3]]).all() and torch.equal(r[0], a[0])
    with pytest.raises(ParameterError, match="method must be one of"):
        head_importance(model, "magnitude")
    with pytest.raises(ParameterError, match="needs batches"):
        head_importance(model, "gradient")
    assert set(METHODS) == {"gradient", "entropy", "confidence", "random", "article"}


# ------------------------------------------------------------------ selection


IMP = torch.tensor([[0.1, 0.5, 0.3, 0.9], [0.2, 0.05, 0.8, 0.7]])


def test_select_by_fraction_global_and_per_layer():
    assert select_heads(IMP, fraction=0.25) == {0: [0], 1: [1]}
    assert select_heads(IMP, fraction=0.25, per_layer=True) == {0: [0], 1: [1]}
    assert select_heads(IMP, fraction=0.5, per_layer=True) == {0: [0, 2], 1: [0, 1]}
    assert select_heads(IMP, fraction=0.5) == {0: [0, 2], 1: [0, 1]}
    assert count_heads(select_heads(IMP, fraction=0.3125)) == 3  # 2.5 heads rounds half up
    assert select_heads(IMP, fraction=0.0) == {}


def test_select_never_removes_the_last_head_of_a_layer_unless_asked():
    keep_best = {0: [0, 1, 2], 1: [0, 1, 3]}
    assert select_heads(IMP, fraction=1.0) == keep_best
    assert select_heads(IMP, fraction=1.0, per_layer=True) == keep_best
    assert select_heads(IMP, threshold=1.0) == keep_best  # layer 1 would be emptied: its best head stays
    assert select_heads(IMP, fraction=1.0, allow_empty_layers=True) == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3]}
    # a global fraction takes the next head elsewhere when a layer is down to one
    skewed = torch.tensor([[0.0, 0.01, 0.02, 0.03], [0.5, 0.6, 0.7, 0.8]])
    assert select_heads(skewed, fraction=0.5) == {0: [0, 1, 2], 1: [0]}


def test_select_by_threshold_on_rescaled_scores():
    # global: (x - 0.05) / 0.85 < 0.2  <=>  x < 0.22
    assert select_heads(IMP, threshold=0.2) == {0: [0], 1: [0, 1]}
    # per layer: layer 0 rescaled over [0.1, 0.9], layer 1 over [0.05, 0.8]
    assert select_heads(IMP, threshold=0.5, per_layer=True) == {0: [0, 2], 1: [0, 1]}
    assert select_heads(IMP, threshold=0.0) == {}
    assert select_heads(torch.ones(2, 3), threshold=0.9) == {}  # nothing stands out: nothing goes


def test_select_counts_removed_heads_and_breaks_ties_by_index():
    imp = IMP.clone()
    imp[0, 3] = float("nan")  # already removed
    assert select_heads(imp, fraction=0.25) == {0: [3], 1: [1]}  # 2 of 8: the removed one counts
    assert select_heads(torch.zeros(2, 4), fraction=0.25) == {0: [0, 1]}
    with pytest.raises(ParameterError, match="exactly one of fraction or threshold"):
        select_heads(IMP)
    with pytest.raises(ParameterError, match="exactly one of fraction or threshold"):
        select_heads(IMP, fraction=0.1, threshold=0.1)
    with pytest.raises(ParameterError, match=r"fraction must be a number in \[0.0, 1.0\]; got 1.5"):
        select_heads(IMP, fraction=1.5)
    with pytest.raises(ParameterError, match="importance must be a \\[layers, heads\\] grid"):
        select_heads(IMP[0], fraction=0.5)


# ------------------------------------------------------------------ cost model


def test_cost_model_against_hand_counts():
    torch.manual_seed(0)
    m = TransformerClassifier(vocab_size=100, n_tokens_max=16, d_model=8, n_layers=2, n_heads=2, d_ff=16, n_classes=3)
    c = model_cost(m, 2, 5)
    B, T, d, h, dh, ff = 2, 5, 8, 2, 4, 16
    proj = 4 * 2 * B * T * d * (h * dh)               # Q, K, V, O
    score = 2 * 2 * B * h * T * T * dh                # Q K^T and weights x V
    ffn = 2 * B * T * (d * ff + ff * d)
    assert (c.attention_proj_flops, c.attention_score_flops, c.ffn_flops) == (2 * proj, 2 * score, 2 * ffn)
    assert c.head_flops == 2 * B * d * 3
    assert c.total_flops == 2 * (proj + score + ffn) + 2 * B * d * 3 == 23_776
    assert c.params == sum(p.numel() for p in m.parameters())
    assert c.attention_params == 2 * (4 * d * d + 3 * d + d)
    assert c.embedding_params == 100 * 8 + 16 * 8 and c.heads == 4
    # pricing a head set == pricing the pruned model, and parameters match the real tensors
    heads = {0: [1]}
    priced, pruned = model_cost(m, 2, 5, prune=heads), pruned_copy(m, heads)
    assert priced == model_cost(pruned, 2, 5) and priced.params == sum(p.numel() for p in pruned.parameters())
    assert priced.attention_proj_flops == proj + 4 * 2 * B * T * d * dh
    r = reduction(c, priced)
    assert r["attention_flops"] == pytest.approx(0.25) and 0 < r["total_flops"] < 0.25


def test_cost_model_of_minilm(minilm_clf):
    c = model_cost(minilm_clf, 1, 128)
    layer = 4 * 2 * 128 * 384 * 384 + 4 * 12 * 128 * 128 * 32 + 2 * 128 * 2 * 384 * 1536
    assert c.total_flops == 6 * layer + 2 * 384 * 3
    assert c.params == 22_565_376 + 384 * 3 + 3 and c.heads == 72
    every = {i: list(range(12)) for i in range(6)}
    assert model_cost(minilm_clf, 1, 128, prune=every).attention_flops == 0
    share = c.attention_flops / c.total_flops
    assert 0.36 < share < 0.38  # attention is ~37 % of MiniLM's FLOPs at 128 tokens


# ------------------------------------------------------------------ latency


def test_latency_returns_the_median_of_its_repeats_and_restores_state():
    model = small_model(vocab=100).train()
    threads = torch.get_num_threads()
    lat = measure_latency(model, 2, 8, repeats=5, warmup=1, threads=1)
    assert len(lat.times_s) == 5 and lat.median_s == statistics.median(lat.times_s)
    assert lat.median_ms == 1000 * lat.median_s and lat.threads == 1 and lat.device == "cpu"
    assert (lat.batch_size, lat.length, lat.repeats, lat.warmup) == (2, 8, 5, 1)
    assert torch.get_num_threads() == threads and model.training
    both = compare_latency({"a": model, "b": pruned_copy(model, {0: [0]})}, 3, 4, repeats=3, warmup=0, threads=None)
    assert set(both) == {"a", "b"} and all(len(v.times_s) == 3 for v in both.values())
    with pytest.raises(ParameterError, match="repeats"):
        measure_latency(model, 2, 8, repeats=0)
