"""dsopt.stats.sequential: decide mode keeps P(any false decision) at alpha over its looks.

The simulation below is the check the decide-mode issue asks for: families of 3 settings whose true
per-seed paired difference sits exactly on the claim's lower end (so every decision is a false one),
judged at each look with Holm across the 3 settings at the look's spent alpha, open claims only.
It is a numpy-vectorised copy of the rule :func:`decide` + :func:`assess_all` apply, cross-checked
family by family against :func:`decide` itself. The naive rule (full alpha at every look) fails the
same bound, so the test has teeth.
"""
from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

import dsopt.stats.claims as claims_module
import dsopt.stats.estimates as estimates_module
from dsopt.stats import CONTRADICTED, INCONCLUSIVE, SUPPORTED, Claim, Interval, Verdict, assess_all, sample
from dsopt.stats.sequential import (
    SPENDING,
    DecideInterrupted,
    DecideResult,
    SequentialDesign,
    decide,
)
from dsopt.util.validation import ParameterError

M = 3          # settings judged together (Holm within each look)
LOW = 0.2      # the claim's lower end; under the null the true mean is exactly LOW


# ---------------------------------------------------------------------------------------------------
# The vectorised rule (same decisions as decide + assess_all on Claim.at_least(LOW) per setting)
# ---------------------------------------------------------------------------------------------------

def simulate(design: SequentialDesign, x: np.ndarray, *, naive: bool = False):
    """x: (families, M, max_seeds) per-seed paired differences. Returns (look, status) arrays (families, M):
    look = the 1-based look at which the setting was decided (0 = never), status +1 supported / -1 contradicted."""
    F, m, _ = x.shape
    look = np.zeros((F, m), int)
    status = np.zeros((F, m), int)
    for k, n in enumerate(design.looks(), start=1):
        a = design.alpha if naive else design.alpha_at(k)
        d = x[:, :, :n] - LOW
        t = d.mean(-1) / (d.std(-1, ddof=1) / math.sqrt(n))
        p = np.minimum(1.0, 2 * sps.t.sf(np.abs(t), n - 1))   # the decisive (two-sided) p of assess_all
        is_open = look == 0
        m_open = is_open.sum(1, keepdims=True)
        pp = np.where(is_open, p, np.inf)
        order = np.argsort(pp, axis=1, kind="stable")
        ranks = np.arange(m)
        ok = (np.take_along_axis(pp, order, 1) <= a / np.maximum(m_open - ranks, 1)) & (ranks < m_open)
        rejected_sorted = np.cumprod(ok, axis=1).astype(bool)            # Holm: stop at the first non-rejection
        rejected = np.zeros_like(rejected_sorted)
        np.put_along_axis(rejected, order, rejected_sorted, 1)
        rejected &= is_open
        look[rejected] = k
        status[rejected] = np.sign(t[rejected]).astype(int)
    return look, status


def draws(families: int, mean, max_seeds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((families, M, max_seeds)) + np.broadcast_to(np.asarray(mean, float), (M,))[None, :, None]


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    lo = 0.0 if k == 0 else float(sps.beta.ppf((1 - conf) / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - (1 - conf) / 2, k + 1, n - k))
    return lo, hi


NULL_DESIGNS = [
    SequentialDesign(),                                                   # 3, 6, 9, 12 seeds, O'Brien-Fleming
    SequentialDesign(max_seeds=12, batch=3, spending="pocock"),
    SequentialDesign(max_seeds=12, batch=3, spending="linear"),
    SequentialDesign.from_looks((3, 4, 6, 10, 16), spending="obrien-fleming"),
]


@pytest.mark.parametrize("design", NULL_DESIGNS, ids=lambda d: f"{d.spending}-{'-'.join(map(str, d.looks()))}")
def test_false_decision_rate_under_the_null_is_at_most_alpha(design):
    families = 20_000
    x = draws(families, LOW, design.max_seeds, seed=20261207)
    look, _ = simulate(design, x)
    false = int((look > 0).any(axis=1).sum())
    lo, hi = clopper_pearson(false, families)
    assert hi <= design.alpha, (f"{design.describe()}: P(any false decision) = {false / families:.4f} "
                                f"[{lo:.4f}, {hi:.4f}] over {families} families of {M}")
    # ... while the same looks with the full alpha at each (stop when 'significant') overclaim:
    naive, _ = simulate(design, x, naive=True)
    naive_false = int((naive > 0).any(axis=1).sum())
    naive_lo, _ = clopper_pearson(naive_false, families)
    assert naive_lo > design.alpha, f"naive: {naive_false / families:.4f} (lower end {naive_lo:.4f})"


@pytest.fixture
def cached_t_quantile(monkeypatch):
    """Memoise t_quantile (pure, same values) so a few hundred families run through assess_all in seconds."""
    cached = functools.lru_cache(maxsize=None)(estimates_module.t_quantile)
    monkeypatch.setattr(estimates_module, "t_quantile", cached)
    monkeypatch.setattr(claims_module, "t_quantile", cached)


def run_family(design: SequentialDesign, xf: np.ndarray):
    """One family through decide() itself, with a judge that calls assess_all (Holm) over the open settings."""
    names = [f"s{j}" for j in range(M)]
    claim = Claim.at_least(LOW, on="level")

    def measure(n):
        return {name: xf[j, :n] for j, name in enumerate(names)}

    def judge(results, alpha, open_claims):
        todo = [name for name in names if open_claims is None or name in open_claims]
        verdicts = assess_all([(sample(results[name]), claim) for name in todo], alpha=alpha)
        return dict(zip(todo, verdicts))

    return decide(design, measure, judge)


@pytest.mark.usefixtures("cached_t_quantile")
def test_vectorised_rule_matches_decide_family_by_family():
    design = SequentialDesign()
    # 150 families (CI time): 100 under the null (a few false decisions to agree on), 50 with clear effects
    x = np.concatenate([draws(100, LOW, 12, seed=1), draws(50, [LOW + 1.5, LOW, LOW - 1.0], 12, seed=2)])
    look, status = simulate(design, x)
    sign = {SUPPORTED: 1, CONTRADICTED: -1}
    for f in range(x.shape[0]):
        res = run_family(design, x[f])
        got_look = [res.outcomes[f"s{j}"].look or 0 for j in range(M)]
        got_status = [sign.get(res.outcomes[f"s{j}"].status, 0) for j in range(M)]
        assert got_look == list(look[f]) and got_status == list(status[f]), f"family {f}"
    assert (look[:100] > 0).sum() >= 2 and (look[100:] > 0).sum() > 50   # both branches were exercised


def test_power_a_clear_effect_is_supported_early():
    design = SequentialDesign()                      # looks at 3, 6, 9, 12 seeds
    families = 4000
    x = draws(families, LOW + 2.0, design.max_seeds, seed=3)   # true mean 2 sd above the claim's lower end
    look, status = simulate(design, x)
    supported = (status == 1).mean()
    before_budget = ((look > 0) & (look < design.n_looks)).mean()
    seeds = np.asarray(design.looks())[np.where(look > 0, look, design.n_looks) - 1]
    assert supported >= 0.95 and (status == -1).sum() == 0
    assert before_budget >= 0.8, before_budget
    assert seeds.mean() <= 9, seeds.mean()


# ---------------------------------------------------------------------------------------------------
# The design: looks, alpha spending, validation
# ---------------------------------------------------------------------------------------------------

def test_looks_and_alpha_spending_arithmetic():
    d = SequentialDesign()
    assert (d.alpha, d.start, d.max_seeds, d.spending) == (0.05, 3, 12, "obrien-fleming")
    assert d.looks() == (3, 6, 9, 12) and d.n_looks == 4
    z = sps.norm.isf(0.025)
    for k, n in enumerate(d.looks(), start=1):
        assert d.spent(k) == pytest.approx(2 * sps.norm.sf(z / math.sqrt(n / 12)), rel=1e-12)
    assert d.alpha_at(1) == pytest.approx(2 * sps.norm.sf(2 * z))     # t = 1/4: almost nothing at 3 seeds
    assert [d.alpha_at(k) for k in range(1, 5)] == sorted(d.alpha_at(k) for k in range(1, 5))
    for spending in SPENDING:
        d = SequentialDesign(max_seeds=12, batch=3, spending=spending)
        shares = [d.alpha_at(k) for k in range(1, d.n_looks + 1)]
        assert all(a > 0 for a in shares) and sum(shares) == pytest.approx(0.05, abs=1e-15)
        assert sum(shares) <= 0.05 + 1e-15
    assert SequentialDesign(spending="linear").alpha_at(2) == pytest.approx(0.0125)
    assert SequentialDesign(spending="pocock").alpha_at(1) == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 4))
    # a batch that does not divide the budget: the last look is the budget
    assert SequentialDesign(start=3, batch=4, max_seeds=12).looks() == (3, 7, 11, 12)
    # one look at the budget is the fixed design: all of alpha there
    one = SequentialDesign(start=10, max_seeds=10, alpha=0.01)
    assert one.looks() == (10,) and one.alpha_at(1) == 0.01
    explicit = SequentialDesign.from_looks([4, 8, 16], alpha=0.1, spending="linear")
    assert (explicit.start, explicit.max_seeds, explicit.looks()) == (4, 16, (4, 8, 16))
    assert explicit.alpha_at(2) == pytest.approx(0.1 * 4 / 16)
    info = json.loads(json.dumps(explicit.as_dict()))
    assert info["looks"] == [4, 8, 16] and sum(info["alpha_at"]) == pytest.approx(0.1)
    assert "3 looks at 4, 8, 16 seeds, linear alpha spending" in explicit.describe()


@pytest.mark.parametrize("kwargs, name, words", [
    (dict(alpha=0.5), "alpha", "alpha must be a number in (0.0, 0.5)"),
    (dict(alpha=0), "alpha", "got 0"),
    (dict(start=2), "start", "start must be an integer in [3, 12]; got 2"),
    (dict(start=13), "start", "start must be an integer in [3, 12]; got 13"),
    (dict(max_seeds=2), "max_seeds", "max_seeds must be an integer in [3, 10000]; got 2"),
    (dict(max_seeds=6.5), "max_seeds", "got 6.5"),
    (dict(batch=0), "batch", "batch must be an integer in [1, 10000]; got 0"),
    (dict(spending="bonferroni"), "spending", "spending must be one of 'obrien-fleming', 'pocock', 'linear'"),
    (dict(batch=(3, 6, 6, 12)), "batch", "strictly increasing"),
    (dict(batch=(3, 6, 10)), "batch", "from start=3 to max_seeds=12"),
    (dict(batch=(2, 6, 12)), "batch", "batch must be an integer in [3, 10000]; got 2"),
    (dict(batch=()), "batch", "at least one"),
    (dict(max_seeds=5000, start=3, batch=100), "start", "look 1 at 3 of max_seeds=5000 seeds would spend no alpha"),
])
def test_design_validation_names_the_parameter_and_its_range(kwargs, name, words):
    with pytest.raises(ParameterError) as err:
        SequentialDesign(**kwargs)
    assert err.value.name == name and words in str(err.value), str(err.value)


def test_look_index_is_checked():
    d = SequentialDesign()
    for k in (0, 5):
        with pytest.raises(ParameterError, match=r"k must be an integer in \[1, 4\]"):
            d.alpha_at(k)
    with pytest.raises(ParameterError) as err:
        SequentialDesign.from_looks(())
    assert err.value.name == "looks"


# ---------------------------------------------------------------------------------------------------
# decide(): the loop
# ---------------------------------------------------------------------------------------------------

def verdict(status: str, n: int, name: str = "") -> Verdict:
    claim = Claim.at_least(0.0, text=name or "x")
    return Verdict(claim=claim, status=status, point=0.1, interval=Interval(0.05, 0.15, 0.95, "paired-t", n), n=n)


class Scripted:
    """measure/judge from a script {name: [status at look 1, look 2, ...]}; records every call."""

    def __init__(self, script, interrupt_at=None):
        self.script, self.interrupt_at = script, interrupt_at
        self.measured, self.judged = [], []

    def measure(self, n):
        if self.interrupt_at is not None and len(self.measured) + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        self.measured.append(n)
        return n

    def judge(self, n, alpha, open_claims):
        self.judged.append((n, alpha, open_claims))
        k = len(self.measured) - 1
        return {name: verdict(statuses[min(k, len(statuses) - 1)], n, name) for name, statuses in self.script.items()}


def test_a_claim_decided_at_look_one_is_frozen_and_not_judged_again():
    s = Scripted({"a": [SUPPORTED, CONTRADICTED], "b": [INCONCLUSIVE, INCONCLUSIVE, CONTRADICTED],
                  "c": ["not testable here", SUPPORTED]})
    done = []
    res = decide(SequentialDesign(), s.measure, s.judge, claims_done=lambda name, o: done.append((name, o.look)))
    assert s.measured == [3, 6, 9]                       # all decided at look 3: the budget's last look never runs
    assert [j[2] for j in s.judged] == [None, frozenset({"b"}), frozenset({"b"})]
    d = SequentialDesign()
    assert [j[1] for j in s.judged] == [d.alpha_at(1), d.alpha_at(2), d.alpha_at(3)]
    a, b, c = (res.outcomes[x] for x in "abc")
    # the judge's later CONTRADICTED for 'a' is ignored; any status other than inconclusive is final
    assert (a.status, a.look, a.seeds, a.verdict.n) == (SUPPORTED, 1, 3, 3)
    assert (c.status, c.look, c.label) == ("not testable here", 1, "not testable here")
    assert (b.status, b.look, b.seeds) == (CONTRADICTED, 3, 9)
    assert done == [("a", 1), ("c", 1), ("b", 3)]
    assert [h["statuses"] for h in res.history] == [
        {"a": SUPPORTED, "b": INCONCLUSIVE, "c": "not testable here"}, {"b": INCONCLUSIVE}, {"b": CONTRADICTED}]
    assert (res.looks_used, res.seeds_spent, res.interrupted) == (3, 9, False)
    assert res.summary() == "decided 3 of 3 claims after 3 looks (9 seeds)"


def test_budget_exhaustion_ends_inconclusive_at_k_seeds_and_progress_reports_each_look():
    s = Scripted({"x": [INCONCLUSIVE], "y": [INCONCLUSIVE, SUPPORTED], "z": [INCONCLUSIVE, INCONCLUSIVE, CONTRADICTED]})
    calls = []
    res = decide(SequentialDesign(), s.measure, s.judge, progress=lambda *a: calls.append(a))
    assert s.measured == [3, 6, 9, 12]
    assert calls == [(1, 4, 3, ("x", "y", "z")), (2, 4, 6, ("x", "z")), (3, 4, 9, ("x",)), (4, 4, 12, ("x",))]
    x = res.outcomes["x"]
    assert (x.decided, x.status, x.label, x.look) == (False, INCONCLUSIVE, "inconclusive at 12 seeds", None)
    assert x.verdict is not None and x.verdict.n == 12     # the last look's numbers are kept
    assert res.decided == ["y", "z"] and res.undecided == ["x"]
    assert res.summary() == "decided 2 of 3 claims after 4 looks (12 seeds); 'x' inconclusive at 12 seeds"
    out = json.loads(json.dumps(res.as_dict()))
    assert out["claims"]["x"]["label"] == "inconclusive at 12 seeds" and out["claims"]["y"]["look"] == 2
    assert out["claims"]["y"]["verdict"]["status"] == SUPPORTED and out["seeds_spent"] == 12
    assert [h["seeds"] for h in out["history"]] == [3, 6, 9, 12] and out["design"]["looks"] == [3, 6, 9, 12]


def test_interruption_keeps_what_the_finished_looks_decided():
    s = Scripted({"a": [SUPPORTED], "b": [INCONCLUSIVE]}, interrupt_at=3)
    with pytest.raises(DecideInterrupted) as err:
        decide(SequentialDesign(), s.measure, s.judge)
    assert isinstance(err.value, KeyboardInterrupt)        # still stops a CLI like Ctrl-C
    res = err.value.result
    assert isinstance(res, DecideResult) and res.interrupted
    assert (res.looks_used, res.seeds_spent) == (2, 6)
    assert (res.outcomes["a"].status, res.outcomes["a"].look) == (SUPPORTED, 1)
    assert res.outcomes["b"].label == "inconclusive at 6 seeds"
    assert res.summary() == ("decided 1 of 2 claims after 2 looks (6 seeds); 'b' inconclusive at 6 seeds "
                             "(interrupted before the budget of 12 seeds: look 2 of 4 finished)")
    assert json.loads(json.dumps(res.as_dict()))["interrupted"] is True
    # Ctrl-C during the first look: nothing finished, nothing decided
    s = Scripted({"a": [SUPPORTED]}, interrupt_at=1)
    with pytest.raises(DecideInterrupted) as err:
        decide(SequentialDesign(), s.measure, s.judge)
    assert err.value.result.outcomes == {} and err.value.result.looks_used == 0
    assert "no look finished" in err.value.result.summary()


def test_decide_with_assess_all_and_a_per_seed_cache():
    """The intended wiring: measure caches runs per seed, judge is assess_all over the open claims."""
    rng = np.random.default_rng(7)
    truth = {"clear": 1.0, "none": 0.0}       # per-seed differences: sd 0.2 around these means
    runs_made = []
    cache: dict[int, dict] = {}

    def measure(n):
        for seed in range(n):
            if seed not in cache:
                runs_made.append(seed)
                cache[seed] = {name: mu + 0.2 * rng.standard_normal() for name, mu in truth.items()}
        return [cache[s] for s in range(n)]

    claims = {"clear": Claim.at_least(0.5), "none": Claim.at_least(0.5)}

    def judge(results, alpha, open_claims):
        names = [c for c in claims if open_claims is None or c in open_claims]
        items = [(sample([r[name] for r in results]), Claim.at_least(claims[name].low, on="level")) for name in names]
        return dict(zip(names, assess_all(items, alpha=alpha)))

    res = decide(SequentialDesign(max_seeds=12, batch=3), measure, judge)
    assert runs_made == list(range(res.seeds_spent))        # every seed ran once, whatever the number of looks
    assert res.outcomes["clear"].status == SUPPORTED and res.outcomes["none"].status == CONTRADICTED
    assert res.outcomes["clear"].verdict.correction is None or "Holm" in res.outcomes["clear"].verdict.correction


def test_judge_contract_is_checked():
    d = SequentialDesign()
    with pytest.raises(ParameterError, match="no verdicts at the first look"):
        decide(d, lambda n: n, lambda r, a, o: {})
    with pytest.raises(ParameterError, match=r"no verdict for the open claim\(s\) \['b'\] at look 2"):
        decide(d, lambda n: n, lambda r, a, o: {"a": verdict(INCONCLUSIVE, r)} if o else
               {"a": verdict(INCONCLUSIVE, r), "b": verdict(INCONCLUSIVE, r)})
    with pytest.raises(ParameterError, match="must return dsopt.stats.Verdict values; got str for 'a'"):
        decide(d, lambda n: n, lambda r, a, o: {"a": SUPPORTED})
    with pytest.raises(ParameterError, match="SequentialDesign"):
        decide({"alpha": 0.05}, lambda n: n, lambda r, a, o: {})
