"""The imbalance knob of make_task on real data: exact train counts, natural val/test, determinism."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dsopt.data import load_splits
from dsopt.data.tabular import Standardizer
from dsopt.data.tasks import make_task
from dsopt.util.validation import ParameterError


@pytest.fixture(scope="module", autouse=True)
def _parse_credit_once():
    """make_task parses the 30 000-row credit CSV on every call (~0.5 s, ten calls here): parse it once per
    module and hand every call fresh copies. The parser itself is tested on the real file in test_data.py;
    everything asserted here is still computed by make_task / load_splits from those parsed rows."""
    from dsopt.data import parsers

    real, memo = parsers.parse_credit_card_default, {}

    def parse_once(path):
        st = Path(path).stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in memo:
            memo[key] = real(path)
        X, y, names = memo[key]
        return X.copy(), y.copy(), list(names)

    mp = pytest.MonkeyPatch()
    mp.setattr(parsers, "parse_credit_card_default", parse_once)
    yield
    mp.undo()


def counts(loader) -> list[int]:
    return np.bincount(loader.dataset.tensors[-1].numpy(), minlength=2).tolist()


def test_credit_default_natural_split_and_model():
    task = make_task("credit_card_default", scale="workshop", seed=0)
    assert task.class_names == ["no_default", "default"]
    assert task.class_counts == counts(task.train_loader) == [16354, 4646]  # 22.1 % default
    assert task.meta["imbalance_ratio"] is None
    X = task.train_loader.dataset.tensors[0]
    assert X.shape == (21000, 23) and X.dtype == torch.float32
    assert torch.allclose(X.mean(0), torch.zeros(23), atol=1e-4) and torch.allclose(X.std(0), torch.ones(23), atol=1e-3)
    model = task.make_model()
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [64, 64, 2]
    assert any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    assert model(X[:5]).shape == (5, 2)


@pytest.mark.parametrize("ratio, minority", [(100, 164), (578, 28), (10, 1635)])
def test_credit_default_imbalance_exact_train_counts(ratio, minority):
    task = make_task("credit_card_default", scale="workshop", seed=3, imbalance_ratio=ratio)
    # every non-default kept; round(16354 / ratio) defaults drawn: 163.54 -> 164, 28.29 -> 28, 1635.4 -> 1635
    assert task.class_counts == counts(task.train_loader) == [16354, minority]
    assert task.meta["achieved_ratio"] == pytest.approx(16354 / minority)
    assert task.meta["natural_class_counts"] == [16354, 4646] and task.meta["imbalance_seed"] == 0
    assert counts(task.val_loader) == [3505, 995] and counts(task.test_loader) == [3505, 995]  # natural ratio


def test_standardisation_uses_the_train_split_actually_used():
    splits = load_splits("credit_card_default")
    task = make_task("credit_card_default", scale="workshop", seed=0, imbalance_ratio=100)
    train_X = task.train_loader.dataset.tensors[0].numpy()
    assert np.allclose(train_X.mean(0), 0, atol=1e-4)
    # val/test are transformed with the TRAIN statistics (of the subsampled train split), never their own
    expected_val = Standardizer().fit(_train_rows(splits, task)).transform(splits.val.X)
    assert np.allclose(task.val_loader.dataset.tensors[0].numpy(), expected_val, atol=1e-5)
    assert not np.allclose(task.val_loader.dataset.tensors[0].numpy().mean(0), 0, atol=1e-3)


def _train_rows(splits, task) -> np.ndarray:
    """The raw training rows the task kept (all majority rows + the drawn minority rows), in split order."""
    from dsopt.data.imbalance import subsample_minority

    idx, _ = subsample_minority(splits.train.y, 100, minority=1, seed=task.meta["imbalance_seed"])
    return splits.train.X[idx]


def test_subsample_is_independent_of_the_run_seed_and_deterministic():
    a = make_task("credit_card_default", scale="workshop", seed=0, imbalance_ratio=100)
    b = make_task("credit_card_default", scale="workshop", seed=7, imbalance_ratio=100)
    c = make_task("credit_card_default", scale="workshop", seed=0, imbalance_ratio=100)
    for x, y in zip(a.train_loader.dataset.tensors, b.train_loader.dataset.tensors):
        assert torch.equal(x, y)  # the same rows for every run seed
    first = lambda t: next(iter(t.train_loader))[0]  # features of the first batch
    assert torch.equal(first(a), first(c)) and not torch.equal(first(a), first(b))  # the seed moves only the order
    assert all(torch.equal(p, q) for p, q in zip(a.make_model().parameters(), c.make_model().parameters()))


def test_sms_spam_imbalance_and_natural_eval_splits():
    task = make_task("sms_spam_collection", scale="workshop", seed=0, imbalance_ratio=100)
    assert task.class_names == ["ham", "spam"]
    assert task.class_counts == counts(task.train_loader) == [3378, 34]  # round(33.78) spam kept of 523
    assert counts(task.val_loader) == [724, 112] and counts(task.test_loader) == [725, 112]
    batch, y = next(iter(task.train_loader))
    assert task.make_model()(**batch).shape == (len(y), 2)


def test_imbalance_ratio_is_validated_with_its_name():
    with pytest.raises(ParameterError, match=r"imbalance_ratio: ratio must be >= the natural ratio 3\.52:1"):
        make_task("credit_card_default", scale="workshop", imbalance_ratio=2.0)
    with pytest.raises(ParameterError, match=r"imbalance_ratio must be a number in \[1\.0, inf\)"):
        make_task("credit_card_default", scale="workshop", imbalance_ratio=0.5)
    with pytest.raises(ParameterError, match="imbalance_ratio needs a binary task"):
        make_task("digits", scale="tiny", imbalance_ratio=50)
