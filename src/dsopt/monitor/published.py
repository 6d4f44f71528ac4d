"""Published ARL values the charts are checked against (zero-state, two-sided, normal data).

Each entry names where the number comes from. Where no published copy was at hand the value is
computed by an exact method and marked ``source="computed: ..."``, never presented as published.

Sources
-------
* Champ, C. W. & Woodall, W. H. (1987). Exact results for Shewhart control charts with supplementary
  runs rules. Technometrics 29(4), 393-399. Table 1 (columns C1, C12, C13, C14 as reproduced in the
  examples of the R package ``spc``, ``xshewhartrunsrules.arl``); the in-control ARL of all four
  Western Electric rules, 91.75, as quoted from that paper (e.g. Wikipedia, "Western Electric rules").
* Montgomery, D. C., Introduction to Statistical Quality Control, Table 9.3 (= Montgomery & Runger,
  Applied Statistics and Probability for Engineers, Table 16-9): tabular CUSUM, k = 1/2, h = 4 and 5.
* Lucas, J. M. & Saccucci, M. S. (1990). Exponentially weighted moving average control schemes:
  properties and enhancements. Technometrics 32(1), 1-12; as tabulated in Montgomery, Table 9.11
  (= Montgomery & Runger, Table 16-10): EWMA lambda = 0.10, L = 2.814 and lambda = 0.5, L = 3.07.
  The issue's example design lambda = 0.10, L = 2.7 is in none of these tables: its reference
  values come from the Markov chain of Lucas & Saccucci (1,001 states), marked as computed.
"""
from __future__ import annotations

CHAMP_WOODALL = "Champ & Woodall (1987), Technometrics 29(4), Table 1"
CHAMP_WOODALL_WE = "Champ & Woodall (1987), in-control ARL of the four Western Electric rules"
MONTGOMERY_CUSUM = "Montgomery, Introduction to SQC, Table 9.3 (Montgomery & Runger Table 16-9)"
LUCAS_SACCUCCI = "Lucas & Saccucci (1990); Montgomery Table 9.11 (Montgomery & Runger Table 16-10)"
COMPUTED_WE = "computed: exact Markov chain (Champ & Woodall's construction), no stored copy of the published column"
COMPUTED_EWMA = "computed: Lucas & Saccucci Markov chain, 1,001 states (not in the published tables)"

#: kind, chart parameters, shift (sigma), ARL, source
PUBLISHED_ARL: list[dict] = [
    {"kind": "shewhart", "params": {"L": 3.0}, "shift": 0.0, "arl": 370.40, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0}, "shift": 1.0, "arl": 43.89, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0, "rules": (1, 2)}, "shift": 0.0, "arl": 225.44, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0, "rules": (1, 2)}, "shift": 1.0, "arl": 20.01, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0, "rules": (1, 3)}, "shift": 0.0, "arl": 166.05, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0, "rules": (1, 3)}, "shift": 1.0, "arl": 12.66, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0, "rules": (1, 4)}, "shift": 0.0, "arl": 152.73, "source": CHAMP_WOODALL},
    {"kind": "shewhart", "params": {"L": 3.0, "rules": (1, 4)}, "shift": 1.0, "arl": 14.58, "source": CHAMP_WOODALL},
    {"kind": "shewhart_we", "params": {"L": 3.0}, "shift": 0.0, "arl": 91.75, "source": CHAMP_WOODALL_WE},
    {"kind": "shewhart_we", "params": {"L": 3.0}, "shift": 1.0, "arl": 9.22, "source": COMPUTED_WE},
    {"kind": "cusum", "params": {"k": 0.5, "h": 5.0}, "shift": 0.0, "arl": 465.0, "source": MONTGOMERY_CUSUM},
    {"kind": "cusum", "params": {"k": 0.5, "h": 5.0}, "shift": 1.0, "arl": 10.4, "source": MONTGOMERY_CUSUM},
    {"kind": "cusum", "params": {"k": 0.5, "h": 4.0}, "shift": 0.0, "arl": 168.0, "source": MONTGOMERY_CUSUM},
    {"kind": "cusum", "params": {"k": 0.5, "h": 4.0}, "shift": 1.0, "arl": 8.38, "source": MONTGOMERY_CUSUM},
    {"kind": "ewma", "params": {"lam": 0.1, "L": 2.814}, "shift": 0.0, "arl": 500.0, "source": LUCAS_SACCUCCI},
    {"kind": "ewma", "params": {"lam": 0.1, "L": 2.814}, "shift": 1.0, "arl": 10.3, "source": LUCAS_SACCUCCI},
    {"kind": "ewma", "params": {"lam": 0.5, "L": 3.07}, "shift": 0.0, "arl": 500.0, "source": LUCAS_SACCUCCI},
    {"kind": "ewma", "params": {"lam": 0.5, "L": 3.07}, "shift": 1.0, "arl": 17.5, "source": LUCAS_SACCUCCI},
    {"kind": "ewma", "params": {"lam": 0.1, "L": 2.7}, "shift": 0.0, "arl": 368.98, "source": COMPUTED_EWMA},
    {"kind": "ewma", "params": {"lam": 0.1, "L": 2.7}, "shift": 1.0, "arl": 9.73, "source": COMPUTED_EWMA},
]


def is_published(entry: dict) -> bool:
    """True for values copied from a publication, False for values we computed ourselves."""
    return not entry["source"].startswith("computed")
