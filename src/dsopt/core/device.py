"""Device choice: CUDA when present, else CPU. No code path in dsopt assumes a GPU."""
from __future__ import annotations

import torch

from dsopt.util.validation import check_choice


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to train on.

    ``prefer=None`` or ``"auto"`` -> ``cuda`` if available else ``cpu``. ``"cuda"`` on a machine
    without a GPU raises an error saying so instead of failing later inside a kernel.
    """
    if isinstance(prefer, torch.device):
        prefer = str(prefer)
    if prefer is None or prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = prefer.split(":")[0]
    check_choice("device", kind, ["auto", "cpu", "cuda", "mps"])
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device='cuda' was requested but torch.cuda.is_available() is False on this machine; "
            "use device='auto' or 'cpu'."
        )
    return torch.device(prefer)


def move_to(obj, device: torch.device):
    """Move a tensor, or a tuple/list/dict of tensors, to ``device`` (other values unchanged)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj
