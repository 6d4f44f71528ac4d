"""The served stream: SST-2 reviews, then a gradual shift, starting at a known item, to financial news.

Items, in order: ``reference_items`` SST-2 items (the monitor learns what normal looks like),
``incontrol_items`` more SST-2 items (false alarms are counted here), then ``ramp_items`` over which
the chance that an item is financial news rises linearly from 0 to 1 (the gradual shift; 0 makes it
abrupt), then ``after_items`` of financial news only. The change point is the first ramp item. A seed
reorders both pools and draws the mixture, so seeds are different orders of the same data.
Windows are consecutive runs of ``window_size`` items; labels of a window arrive ``label_delay``
windows after it was served.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dsopt.util.validation import ParameterError, check_number


@dataclass(frozen=True)
class StreamConfig:
    """Geometry of the stream, in items (so a different window size keeps the same data)."""

    window_size: int = 20
    reference_items: int = 400
    incontrol_items: int = 400
    ramp_items: int = 200
    after_items: int = 800
    label_delay: int = 2
    audit_fraction: float = 0.25

    def __post_init__(self):
        check_number("window_size", self.window_size, low=2, high=10_000, integer=True)
        check_number("reference_items", self.reference_items, low=3 * self.window_size, integer=True)
        check_number("incontrol_items", self.incontrol_items, low=0, integer=True)
        check_number("ramp_items", self.ramp_items, low=0, integer=True)
        check_number("after_items", self.after_items, low=self.window_size, integer=True)
        check_number("label_delay", self.label_delay, low=0, high=1000, integer=True)
        check_number("audit_fraction", self.audit_fraction, low=0.0, high=1.0)

    @property
    def change_item(self) -> int:
        return self.reference_items + self.incontrol_items

    @property
    def total_items(self) -> int:
        return self.change_item + self.ramp_items + self.after_items

    @property
    def n_windows(self) -> int:
        return self.total_items // self.window_size

    @property
    def reference_windows(self) -> int:
        return self.reference_items // self.window_size

    @property
    def change_window(self) -> int:
        """The first window that can hold a new-regime item."""
        return self.change_item // self.window_size

    def new_fraction(self, item: np.ndarray) -> np.ndarray:
        """Probability that item ``item`` comes from the new regime."""
        item = np.asarray(item, dtype=float)
        if self.ramp_items == 0:
            return (item >= self.change_item).astype(float)
        return np.clip((item - self.change_item + 1) / self.ramp_items, 0.0, 1.0)

    def as_dict(self) -> dict:
        return asdict(self)


#: stream geometry per scale (workshop: 90 windows of 20; the shift starts at window 40 and is complete at 50)
SCALE_STREAMS = {
    "tiny": StreamConfig(window_size=10, reference_items=100, incontrol_items=100, ramp_items=40, after_items=160,
                         label_delay=1),
    "workshop": StreamConfig(),
    "full": StreamConfig(window_size=25, reference_items=750, incontrol_items=1000, ramp_items=500, after_items=1000),
}


@dataclass
class Stream:
    """One seeded stream: per item, the pool (0 = SST-2, 1 = news), the index in that pool, the label,
    and whether its label is in the audit sample."""

    config: StreamConfig
    seed: int
    new: np.ndarray
    index: np.ndarray
    label: np.ndarray
    audited: np.ndarray

    def window_items(self, w: int) -> slice:
        ws = self.config.window_size
        return slice(w * ws, (w + 1) * ws)


def build_stream(config: StreamConfig, seed: int, sst_labels: np.ndarray, fpb_labels: np.ndarray) -> Stream:
    """Draw the stream of ``seed`` from the two pools (each item used at most once)."""
    seed = check_number("seed", seed, low=0, integer=True)
    n = config.n_windows * config.window_size
    rng = np.random.default_rng([seed, 7])
    new = rng.random(n) < config.new_fraction(np.arange(n))
    order = {0: rng.permutation(len(sst_labels)), 1: rng.permutation(len(fpb_labels))}
    need = {0: int((~new).sum()), 1: int(new.sum())}
    for pool, name, size in ((0, "SST-2", len(sst_labels)), (1, "Financial PhraseBank", len(fpb_labels))):
        if need[pool] > size:
            raise ParameterError("after_items", f"the stream needs {need[pool]} {name} items but its pool holds "
                                                f"{size}: shorten the stream or use a larger scale")
    index = np.empty(n, dtype=np.int64)
    index[~new] = order[0][: need[0]]
    index[new] = order[1][: need[1]]
    label = np.empty(n, dtype=np.int64)
    label[~new] = np.asarray(sst_labels)[index[~new]]
    label[new] = np.asarray(fpb_labels)[index[new]]
    audited = rng.random(n) < config.audit_fraction
    return Stream(config, seed, new, index, label, audited)
