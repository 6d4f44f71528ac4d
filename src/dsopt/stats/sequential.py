"""Decide mode: add seeds in batches until each claim is decided, without inflating false decisions.

Running more seeds whenever a verdict is inconclusive and stopping as soon as it is decided is the
classic way to overclaim: every extra look is another chance for noise to cross a boundary, so with
the full ``alpha`` at each of 4 looks the chance of some false decision is far above ``alpha`` (the
tests measure it). A :class:`SequentialDesign` fixes the looks in advance (cumulative seed counts,
the last one the budget ``max_seeds``) and gives look ``k`` only a share ``alpha_at(k)`` of ``alpha``:

- **Alpha spending (Lan-DeMets).** A spending function ``f`` with ``f(0) = 0`` and ``f(1) = 1`` gives
  the cumulative spend ``alpha * f(t)`` at information fraction ``t = n_k / max_seeds`` (``n_k`` the
  seeds at look ``k``); look ``k`` spends the increment ``alpha_at(k) = alpha * (f(t_k) - f(t_{k-1}))``.
  So the shares sum to exactly ``alpha`` however many looks there are.
- **Validity by the union bound.** Each look judges its still-open claims with the ordinary per-look
  test (:func:`~dsopt.stats.assess_all`: Student-t, Holm across the claims judged together) at level
  ``alpha_at(k)``. Then P(any false decision at any look) <= sum_k P(a first false decision at look k)
  <= sum_k alpha_at(k) <= alpha, whatever the correlation between looks (they share seeds, so they are
  strongly correlated). Holm over only the *open* claims is still valid at each look: a first false
  decision at look k happens while every true claim-null is still open, and Holm's usual argument
  then bounds it by a Bonferroni test over the (fixed) set of true nulls at level ``alpha_at(k)``.
  This needs no joint distribution of the looks and works with t-tests at any number of seeds, but it
  is **conservative**: the exact group-sequential boundaries (computed from the joint distribution of
  the looks' statistics, e.g. by recursive integration) would allow somewhat larger per-look levels.
  The price is a little power at the budget, not validity. (The argument assumes a true claim leaves
  the open set only through a false decision: a final status other than supported/contradicted, such
  as "not testable here", should not depend on the look's evidence about the claim.)

Spending functions (``spending``):

- ``"obrien-fleming"`` (default): ``alpha * f(t) = 2 (1 - Phi(z_{1-alpha/2} / sqrt(t)))``. Spends almost
  nothing at the first looks and most of ``alpha`` at the later ones. It is the default because of
  the union bound: the last look gets only its own increment of ``alpha``, and a claim that needs
  the whole budget (a moderate effect: the common case with a handful of seeds) is decided there.
  O'Brien-Fleming keeps that final increment largest, so decide mode loses the least power against
  running ``max_seeds`` seeds once, while large effects still stop at the middle looks. With 3 seeds
  (2 degrees of freedom) the t test's heavy tails make a small first-look level nearly unreachable
  anyway, so spending more there buys little. Simulated (looks at 3, 6, 9, 12 seeds, Holm over 3
  settings, one with a true effect of d per-seed sd): d = 1.2 is decided 82 % of the time
  (linear 73 %, Pocock 68 %, one look at 12 seeds 89 %); d = 2 over 99 % of the time, after 8.0 seeds
  on average (linear and Pocock 7.3). With no effect in any of the 3 settings, P(any false decision)
  is 0.041 [0.038, 0.044] (20,000 families; the naive full alpha at every look: 0.143).
- ``"pocock"``: ``f(t) = ln(1 + (e - 1) t)``: spends more early (stops large effects sooner) and leaves
  the least for the final look.
- ``"linear"``: ``f(t) = t``: in between.

:func:`decide` runs the loop for any study: ``measure(n)`` gives results for the first ``n`` seeds (the
caller caches runs per seed, so going from 3 to 6 seeds computes only 3 new ones), ``judge(results,
alpha, open_claims)`` gives the open claims' verdicts at that look's level, a claim is frozen at its
first status other than "inconclusive", and claims still open at the budget end "inconclusive at K
seeds".

This module imports only ``dsopt.util`` and this package (and numpy/scipy): no chapter knowledge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from scipy import stats as sps

from dsopt.stats.claims import INCONCLUSIVE, MIN_SEEDS, Verdict
from dsopt.util.validation import ParameterError, check_choice, check_number

__all__ = ["SPENDING", "SequentialDesign", "ClaimOutcome", "DecideResult", "DecideInterrupted", "decide"]

#: The spending functions a :class:`SequentialDesign` accepts.
SPENDING = ("obrien-fleming", "pocock", "linear")
#: No design looks beyond this many seeds.
MAX_DESIGN_SEEDS = 10_000


def _spent(spending: str, alpha: float, t: float) -> float:
    """Cumulative alpha spent at information fraction ``t`` in [0, 1] (exactly ``alpha`` at 1)."""
    if t <= 0:
        return 0.0
    if t >= 1:
        return alpha
    if spending == "obrien-fleming":
        z = float(sps.norm.isf(alpha / 2))
        return float(2 * sps.norm.sf(z / math.sqrt(t)))
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1) * t)
    return alpha * t


@dataclass(frozen=True)
class SequentialDesign:
    """Planned looks over seeds and the share of ``alpha`` each look may spend (see the module docstring).

    ``alpha``: the overall false-decision rate, in (0, 0.5). ``start``: seeds at the first look (at
    least 3: fewer are never decisive). ``max_seeds``: the budget, the seeds at the last look.
    ``batch``: seeds added per look (an int; the last look is ``max_seeds`` even if that step is
    smaller), or an explicit tuple of cumulative seed counts at each look, strictly increasing, from
    ``start`` to ``max_seeds`` (:meth:`from_looks` builds such a design). ``spending``: one of
    :data:`SPENDING`; ``"obrien-fleming"`` by default.

    >>> d = SequentialDesign(max_seeds=12, start=3, batch=3)
    >>> d.looks()
    (3, 6, 9, 12)
    >>> round(sum(d.alpha_at(k) for k in range(1, 5)), 12)
    0.05
    """

    alpha: float = 0.05
    start: int = MIN_SEEDS
    max_seeds: int = 12
    batch: int | tuple[int, ...] = 3
    spending: str = "obrien-fleming"

    def __post_init__(self):
        object.__setattr__(self, "alpha", float(check_number("alpha", self.alpha, low=0.0, high=0.5,
                                                             low_inclusive=False, high_inclusive=False)))
        check_choice("spending", self.spending, SPENDING)
        object.__setattr__(self, "max_seeds", check_number("max_seeds", self.max_seeds, low=MIN_SEEDS,
                                                           high=MAX_DESIGN_SEEDS, integer=True))
        object.__setattr__(self, "start", check_number("start", self.start, low=MIN_SEEDS, high=self.max_seeds,
                                                       integer=True))
        if isinstance(self.batch, (tuple, list)):
            looks = tuple(check_number("batch", n, low=MIN_SEEDS, high=MAX_DESIGN_SEEDS, integer=True)
                          for n in self.batch)
            if not looks:
                raise ParameterError("batch", "batch as looks must name at least one cumulative seed count; got ()")
            if any(b <= a for a, b in zip(looks, looks[1:])):
                raise ParameterError("batch", f"batch as looks must be strictly increasing seed counts; got {looks!r}")
            if looks[0] != self.start or looks[-1] != self.max_seeds:
                raise ParameterError("batch", f"batch as looks must run from start={self.start} to "
                                     f"max_seeds={self.max_seeds}; got {looks!r} (SequentialDesign.from_looks "
                                     "sets start and max_seeds from the looks)")
            object.__setattr__(self, "batch", looks)
        else:
            object.__setattr__(self, "batch", check_number("batch", self.batch, low=1, high=MAX_DESIGN_SEEDS,
                                                           integer=True))
        looks = (self.batch if isinstance(self.batch, tuple)
                 else tuple(range(self.start, self.max_seeds, self.batch)) + (self.max_seeds,))
        spent = (0.0,) + tuple(_spent(self.spending, self.alpha, n / self.max_seeds) for n in looks)
        object.__setattr__(self, "_looks", looks)
        object.__setattr__(self, "_spent", spent)
        for k in range(1, len(looks) + 1):
            if not spent[k] - spent[k - 1] > 0:
                raise ParameterError("start" if k == 1 else "batch", f"look {k} at {looks[k - 1]} of max_seeds="
                                     f"{self.max_seeds} seeds would spend no alpha with {self.spending} spending "
                                     "(it could never decide anything): start later, use fewer looks or max_seeds, "
                                     "or another spending")

    @classmethod
    def from_looks(cls, looks: Sequence[int], *, alpha: float = 0.05, spending: str = "obrien-fleming"
                   ) -> "SequentialDesign":
        """A design with these cumulative seed counts as its looks (first = ``start``, last = ``max_seeds``)."""
        looks = tuple(looks)
        if not looks:
            raise ParameterError("looks", "looks must name at least one cumulative seed count (>= 3); got ()")
        return cls(alpha=alpha, start=looks[0], max_seeds=looks[-1], batch=looks, spending=spending)

    def looks(self) -> tuple[int, ...]:
        """Cumulative seeds at each look; the last is ``max_seeds``."""
        return self._looks

    @property
    def n_looks(self) -> int:
        return len(self._looks)

    def spent(self, k: int) -> float:
        """Cumulative alpha spent up to and including look ``k`` (1-based; 0 before the first look)."""
        k = check_number("k", k, low=0, high=self.n_looks, integer=True)
        return self._spent[k]

    def alpha_at(self, k: int) -> float:
        """The alpha spent at look ``k`` (1-based): the level at which that look decides. Sums to ``alpha``."""
        k = check_number("k", k, low=1, high=self.n_looks, integer=True)
        return self._spent[k] - self._spent[k - 1]

    def describe(self) -> str:
        """One line: the looks and the spending, e.g. for a progress header."""
        looks = self.looks()
        return (f"{len(looks)} looks at {', '.join(map(str, looks))} seeds, {self.spending} alpha spending "
                f"(alpha {self.alpha:g} in all; union bound over looks, Holm within each look)")

    def as_dict(self) -> dict:
        looks = self.looks()
        return {"alpha": self.alpha, "start": self.start, "max_seeds": self.max_seeds, "spending": self.spending,
                "looks": list(looks), "alpha_at": [self.alpha_at(k) for k in range(1, len(looks) + 1)]}


@dataclass
class ClaimOutcome:
    """What decide mode concluded for one claim.

    ``verdict``: the deciding verdict (or, for a claim never decided, the verdict at the last look it
    was judged; None if no look finished). ``look``/``seeds``: the look (1-based) and cumulative seeds
    at which it was decided (None while undecided). ``label``: the status as printed ("supported",
    "contradicted", ..., or "inconclusive at 12 seeds").
    """

    name: str
    verdict: Verdict | None
    look: int | None = None
    seeds: int | None = None
    label: str = ""

    @property
    def decided(self) -> bool:
        return self.look is not None

    @property
    def status(self) -> str:
        return INCONCLUSIVE if self.verdict is None or not self.decided else self.verdict.status

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "label": self.label, "decided": self.decided,
                "look": self.look, "seeds": self.seeds,
                "verdict": None if self.verdict is None else self.verdict.as_dict()}


@dataclass
class DecideResult:
    """The outcome of :func:`decide`: per claim a :class:`ClaimOutcome`, plus the looks used and seeds spent.

    ``history``: one entry per finished look: ``{"look", "seeds", "alpha", "statuses"}`` (``statuses``
    maps the claims judged at that look to their status). ``interrupted``: the run stopped early on
    Ctrl-C (see :class:`DecideInterrupted`).
    """

    design: SequentialDesign
    outcomes: dict[str, ClaimOutcome]
    looks_used: int
    seeds_spent: int
    history: list[dict] = field(default_factory=list)
    interrupted: bool = False
    #: The caller's full verdict at the last look (``Study.decide`` sets the chapter's, to render it); not
    #: part of :meth:`as_dict`.
    verdict: Any = None

    @property
    def verdicts(self) -> dict[str, Verdict | None]:
        return {name: o.verdict for name, o in self.outcomes.items()}

    @property
    def decided(self) -> list[str]:
        return [name for name, o in self.outcomes.items() if o.decided]

    @property
    def undecided(self) -> list[str]:
        return [name for name, o in self.outcomes.items() if not o.decided]

    def summary(self) -> str:
        """One line, e.g. "decided 2 of 3 claims after 3 looks (12 seeds); 'x' inconclusive at 12 seeds"."""
        n, looks = len(self.outcomes), self.looks_used
        if looks == 0:
            return (f"no look finished (interrupted before the first look's {self.design.looks()[0]} seeds); "
                    "nothing decided")
        text = (f"decided {len(self.decided)} of {n} claim{'s' if n != 1 else ''} after {looks} "
                f"look{'s' if looks != 1 else ''} ({self.seeds_spent} seeds)")
        if self.undecided:
            text += f"; {', '.join(repr(x) for x in self.undecided)} inconclusive at {self.seeds_spent} seeds"
        if self.interrupted:
            text += (f" (interrupted before the budget of {self.design.max_seeds} seeds: "
                     f"look {looks} of {self.design.n_looks} finished)")
        return text

    def as_dict(self) -> dict:
        """JSON-safe: the design, each claim's outcome (with its verdict's numbers), the history."""
        return {"design": self.design.as_dict(), "looks_used": self.looks_used, "seeds_spent": self.seeds_spent,
                "interrupted": self.interrupted, "summary": self.summary(),
                "claims": {name: o.as_dict() for name, o in self.outcomes.items()},
                "history": [dict(h, statuses=dict(h["statuses"])) for h in self.history]}


class DecideInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`decide`: still a :class:`KeyboardInterrupt` (so it stops a CLI as one), carrying
    in ``.result`` the :class:`DecideResult` of the looks that finished (``interrupted=True``)."""

    def __init__(self, result: DecideResult):
        super().__init__(result.summary())
        self.result = result


Progress = Callable[[int, int, int, tuple], Any]


def decide(design: SequentialDesign, measure: Callable[[int], Any],
           judge: Callable[[Any, float, frozenset | None], Mapping[str, Verdict]], *,
           progress: Progress | None = None,
           claims_done: Callable[[str, ClaimOutcome], Any] | None = None) -> DecideResult:
    """Add seeds look by look (``design.looks()``) until every claim is decided or the budget is spent.

    At look ``k`` with ``n`` cumulative seeds: ``results = measure(n)`` (the caller caches runs per
    seed, so only the new seeds run), then ``judge(results, design.alpha_at(k), open_claims)`` returns
    ``{name: Verdict}`` for the claims still open (``open_claims`` is None at the first look, meaning
    all claims; later a frozenset of the open names; the judge should apply Holm over exactly those, as
    :func:`~dsopt.stats.assess_all` does for the items it is given). A claim is frozen at its first status
    other than "inconclusive" (supported, contradicted, or any other final status the judge gives) and
    is never judged again; verdicts the judge returns for frozen claims are ignored. Claims still open
    after the last look end "inconclusive at K seeds".

    ``progress(look, n_looks, seeds_spent, open_claims)`` is called after each look (``open_claims`` a
    tuple of names). ``claims_done(name, outcome)`` is called once for each claim when it is decided.

    Ctrl-C (a :class:`KeyboardInterrupt` from ``measure`` or ``judge``) raises :class:`DecideInterrupted`
    (a KeyboardInterrupt) whose ``.result`` holds what the finished looks decided; nothing else is lost,
    since the caller cached every finished seed's runs. A partial look decides nothing: rerunning
    ``decide`` replays the same looks from the cache and continues.
    """
    if not isinstance(design, SequentialDesign):
        raise ParameterError("design", "expected a dsopt.stats.sequential.SequentialDesign; "
                             f"got {type(design).__name__}")
    looks = design.looks()
    outcomes: dict[str, ClaimOutcome] = {}
    history: list[dict] = []
    looks_used, seeds_spent = 0, 0

    def result(interrupted: bool = False) -> DecideResult:
        for o in outcomes.values():
            if not o.decided:
                o.label = f"inconclusive at {seeds_spent} seeds"
        return DecideResult(design=design, outcomes=dict(outcomes), looks_used=looks_used, seeds_spent=seeds_spent,
                            history=list(history), interrupted=interrupted)

    def _look(k: int, n: int) -> bool:
        """Run look k (n seeds); False when every claim is decided."""
        nonlocal looks_used, seeds_spent
        open_now = None if k == 1 else frozenset(name for name, o in outcomes.items() if not o.decided)
        alpha_k = design.alpha_at(k)
        results = measure(n)
        verdicts = dict(judge(results, alpha_k, open_now))
        if k == 1 and not verdicts:
            raise ParameterError("judge", "judge returned no verdicts at the first look: there is nothing to decide")
        expected = set(verdicts) if open_now is None else open_now
        missing = sorted(expected - set(verdicts))
        if missing:
            raise ParameterError("judge", f"judge returned no verdict for the open claim(s) {missing!r} at look {k}")
        statuses = {}
        newly = []
        for name in (verdicts if open_now is None else [x for x in outcomes if x in open_now]):
            v = verdicts[name]
            if not isinstance(v, Verdict):
                raise ParameterError("judge", f"judge must return dsopt.stats.Verdict values; got "
                                     f"{type(v).__name__} for {name!r}")
            statuses[name] = v.status
            o = outcomes.setdefault(name, ClaimOutcome(name=name, verdict=v))
            o.verdict = v
            if v.status != INCONCLUSIVE:
                o.look, o.seeds, o.label = k, n, v.label
                newly.append(name)
        looks_used, seeds_spent = k, n
        history.append({"look": k, "seeds": n, "alpha": alpha_k, "statuses": statuses})
        open_after = tuple(name for name, o in outcomes.items() if not o.decided)
        if claims_done is not None:
            for name in newly:
                claims_done(name, outcomes[name])
        if progress is not None:
            progress(k, len(looks), n, open_after)
        return bool(open_after)

    try:
        for k, n in enumerate(looks, start=1):
            if not _look(k, n):
                break
    except KeyboardInterrupt:
        raise DecideInterrupted(result(interrupted=True)) from None
    return result()
