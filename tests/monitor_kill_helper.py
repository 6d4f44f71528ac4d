"""Run a promotion into a ModelStore and get SIGKILLed at a chosen moment (for tests/test_monitor_loop.py).

usage: python monitor_kill_helper.py STORE MODE
MODE: during_save (half the checkpoint written), before_pointer (checkpoint complete, CURRENT not moved),
      after_pointer (CURRENT moved), none (finish normally).
"""
from __future__ import annotations

import os
import signal
import sys

import torch

from dsopt.monitor.loop import ModelStore


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(root: str, mode: str) -> None:
    store = ModelStore(root)
    torch.manual_seed(123)
    candidate = torch.nn.Linear(8, 2)
    if mode == "during_save":
        real_save = torch.save

        def half_save(obj, fh, *a, **k):
            import io

            buf = io.BytesIO()
            real_save(obj, buf, *a, **k)
            data = buf.getvalue()
            fh.write(data[: len(data) // 2])
            fh.flush()
            os.fsync(fh.fileno())
            die()

        torch.save = half_save
    version = store.save(candidate, {"reason": "test"})
    if mode == "before_pointer":
        die()
    store.promote(version)
    if mode == "after_pointer":
        die()
    print(f"promoted {version}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
