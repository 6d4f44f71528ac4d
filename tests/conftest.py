"""Shared test fixtures: data cache location, isolated Jupyter/IPython dirs, tiny real problems."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DSOPT_DATA") or (REPO.parent / "shared" / "data"))

# Tests never write into the user's Jupyter/IPython configuration.
_tmp = Path(tempfile.mkdtemp(prefix="dsopt-test-home-"))
for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
    os.environ.setdefault(var, str(_tmp / var.lower()))
os.environ.setdefault("DSOPT_DATA", str(SHARED_DATA))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Chapter 03: the NLTK data folder dsopt builds (stopwords, WordNet) and textattack's cache, per session.
os.environ.setdefault("DSOPT_NLTK_DATA", str(_tmp / "nltk_data"))
os.environ.setdefault("DSOPT_TA_CACHE", str(_tmp / "textattack"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread for every test: the models here are tiny, and two threads on a loaded
    2-core machine were up to 40x slower. Notebook and browser tests run in their own processes."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def shared_data() -> Path:
    """The read-only dataset cache (../shared/data beside the checkout, or $DSOPT_DATA)."""
    if not (SHARED_DATA / "SHA256SUMS").is_file():
        pytest.fail(f"dataset cache not found at {SHARED_DATA}; set DSOPT_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def nltk_data() -> Path:
    """The NLTK data folder (stopwords + WordNet 3.0), built once per session offline (dsopt.data.nltk)."""
    from dsopt.data.nltk import ensure_nltk_data

    return ensure_nltk_data(allow_download=False)


import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helpers (jupyterlab_harness)
