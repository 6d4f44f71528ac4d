"""Which distributed backends work on this machine, and why not (``dsopt doctor`` prints it: dsopt.cli.doctor).

Every probe runs in a separate Python process, so asking never imports Horovod into a notebook's
kernel nor initialises CUDA there. ``smoke=True`` also launches a real 2-worker all-reduce per backend
that the probes call usable (about 5-15 s each on 2 cores). ``DSOPT_NO_HOROVOD=1`` makes the doctor and the
launcher treat Horovod as absent (to rehearse the DDP-only path on a machine that has it).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

INSTALL_SCRIPT = Path(__file__).with_name("install_horovod.sh")
INSTALL_HINT = (f"Install it with `bash {INSTALL_SCRIPT}` (builds Horovod 0.28.1 with gloo for the installed "
                f"torch, ~5 min on 2 cores; needs g++, make and cmake 3.13-3.x), then check with `dsopt doctor`.")

_PROBE = r"""
import json, sys
out = {"python": sys.version.split()[0]}
try:
    import torch, torch.distributed as td
    out.update(torch=torch.__version__, dist=td.is_available(), gloo=td.is_available() and td.is_gloo_available(),
               nccl=td.is_available() and td.is_nccl_available(), cuda_built=torch.backends.cuda.is_built())
except Exception as exc:
    out["torch_error"] = f"{type(exc).__name__}: {exc}"
try:
    import horovod
    out["horovod"] = horovod.__version__
    import horovod.torch as hvd
    out.update(horovod_torch=True, horovod_gloo=bool(hvd.gloo_built()), horovod_mpi=bool(hvd.mpi_built()),
               horovod_nccl=bool(hvd.nccl_built()))
except ImportError as exc:
    out["horovod_error"] = f"{type(exc).__name__}: {exc}"
except Exception as exc:
    out["horovod_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def probe(python: str | None = None) -> dict:
    """Facts about torch.distributed and Horovod in ``python`` (a subprocess)."""
    res = subprocess.run([python or sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"probe_error": (res.stderr or res.stdout)[-2000:]}


def _smoke(backend: str, device: str = "cpu") -> tuple[bool, str]:
    from dsopt.distributed.launcher import DistributedError, launch

    code = ("import torch\nt = torch.ones(4) * (rank + 1)\ndist.allreduce_sum_(t)\nresult = t.tolist()\n")
    try:
        res = launch(code, 2, backend, timeout=120, device=device, echo=False)
    except DistributedError as exc:
        return False, f"2-worker all-reduce failed: {str(exc).splitlines()[0]}"
    ok = all(r == [3.0] * 4 for r in res.results)
    return ok, f"2-worker all-reduce {'gave' if ok else 'gave WRONG'} {res.results[0]} in {res.wall_s:.1f} s"


def doctor(smoke: bool = False, python: str | None = None) -> list[dict]:
    """One row per (backend, device): ``ok`` and ``why`` (what works, or what is missing and the fix)."""
    from dsopt.distributed.launcher import horovodrun_path, visible_gpus

    facts = probe(python)
    if os.environ.get("DSOPT_NO_HOROVOD") == "1":  # rehearse the no-Horovod path where Horovod is installed
        facts = {k: v for k, v in facts.items() if not k.startswith("horovod")}
        facts["horovod_error"] = "treated as absent because DSOPT_NO_HOROVOD=1"
    gpus = visible_gpus()
    rows = []
    torch_ok = "torch_error" not in facts and "probe_error" not in facts
    why_torch = facts.get("torch_error") or facts.get("probe_error", "")
    rows.append({"backend": "ddp", "device": "cpu", "ok": bool(torch_ok and facts.get("gloo")),
                 "why": (f"torch {facts.get('torch')} with gloo" if torch_ok and facts.get("gloo")
                         else f"torch.distributed/gloo unavailable: {why_torch or 'torch built without gloo'}")})
    if not torch_ok:
        nccl_why = why_torch
    elif not facts.get("nccl"):
        nccl_why = "this torch build has no NCCL (CPU wheel); install a CUDA build of torch on a GPU machine"
    elif gpus == 0:
        nccl_why = "no GPU visible (nvidia-smi finds none)"
    else:
        nccl_why = f"{gpus} GPU(s) visible, NCCL built (untested on GPU by dsopt's CI)"
    rows.append({"backend": "ddp", "device": "cuda", "ok": bool(torch_ok and facts.get("nccl") and gpus),
                 "why": nccl_why})
    hv = facts.get("horovod")
    if hv is None:
        hv_ok, hv_why = False, f"Horovod is not installed ({facts.get('horovod_error', 'import failed')}). {INSTALL_HINT}"
    elif not facts.get("horovod_torch"):
        hv_ok, hv_why = False, (f"horovod {hv} is installed but horovod.torch does not load "
                                f"({facts.get('horovod_error')}); it was built for another torch. {INSTALL_HINT}")
    elif not facts.get("horovod_gloo"):
        hv_ok, hv_why = False, f"horovod {hv} was built without gloo. {INSTALL_HINT}"
    elif horovodrun_path(python) is None:
        hv_ok, hv_why = False, f"horovod {hv} is importable but horovodrun is not next to {python or sys.executable}"
    else:
        hv_ok, hv_why = True, f"horovod {hv} (gloo{', MPI' if facts.get('horovod_mpi') else ''}) with torch {facts.get('torch')}"
    rows.append({"backend": "horovod", "device": "cpu", "ok": hv_ok, "why": hv_why})
    if smoke:
        for row in rows:
            if row["ok"]:
                ok, msg = _smoke(row["backend"], row["device"])
                row["ok"], row["why"] = ok, f"{row['why']}; {msg}"
    return rows


def format_report(rows: list[dict]) -> str:
    """One line per backend: ``ok``/``NO``, backend, device, why."""
    return "\n".join(f"{'ok ' if r['ok'] else 'NO '} {r['backend']:<8} {r['device']:<5} {r['why']}" for r in rows)
