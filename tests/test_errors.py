"""Every dsopt error raised in a spawned worker reaches the parent intact (class, message, attributes).

A worker of ``run_jobs`` that raises an error which cannot be unpickled turns the helpful message into
``BrokenProcessPool`` / ``TypeError: __init__() missing arguments``. New error classes: add them here.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from dsopt.augment.offline import NltkDataMissing, OfflineError
from dsopt.chapters.runner import ChapterRunError, KernelFailure
from dsopt.data.errors import ChecksumMismatchError, CorruptFileError, DataError, DataUnavailableError
from dsopt.data.nltk import NltkDataError, WordNetMissingError
from dsopt.distributed.launcher import (BackendUnavailable, DistributedError, PauseUnsupported, WorkerFailed, WorkersLost,
                                      WorkerTimeout)
from dsopt.distributed.magic import _Usage
from dsopt.monitor.loop import StoreError
from dsopt.monitor.prometheus import PrometheusError, PrometheusNotFound
from dsopt.studies.executors import CodeVersionError
from dsopt.studies.jobs import JobsCancelled, StoredRunError
from dsopt.util.runfile import RunFileError
from dsopt.util.validation import ParameterError

ERRORS = [
    (ParameterError, ("epochs", "epochs must be an integer in [2, 500]; got 1"), {}),
    (DataError, ("The data folder /x is not writable. Set DSOPT_DATA to a writable folder.",), {}),
    (CorruptFileError, (Path("/data/sst2/dev.tsv"), "a" * 64, "b" * 64, "sst2"), {}),
    (ChecksumMismatchError, ("https://example.org/x.zip", "a" * 64, "b" * 64), {}),
    (DataUnavailableError, ("sms_spam_collection", [Path("/data/sms/SMSSpamCollection")], ["https://u/1"],
                            ["https://u/1: HTTP 404"]), {"offline": True, "hints": ["Alternatively ..."]}),
    (RunFileError, ("/cache/abc.json", "checksum mismatch"), {}),
    (ChapterRunError, ("04", "runs/04/04_dynamic_weighting.ipynb", 11, "DataUnavailableError", "Dataset 'x' ...",
                       "  at Cell In[11], line 3"), {}),
    (KernelFailure, ("01", "runs/01/01_lr_restarts.ipynb", "the kernel died in code cell 4 (...)",
                     "free memory or run a smaller -p scale, then run again"), {}),
    (JobsCancelled, ("schedule comparison", 5, 24), {}),
    (StoredRunError, ("3 of 24 runs ... regenerate with `dsopt run 01 --update-notebook`",), {}),
    (CodeVersionError, ("worker w1 has code 0123456789ab for m:f, the client ba9876543210: ...",), {}),
    (StoreError, ("version 2 (/store/versions/v000002.pt) is not a model checkpoint this store serves: ...",), {}),
    (PrometheusNotFound, ("the prometheus server binary was not found on PATH: install ...",), {}),
    (PrometheusError, ("prometheus did not become ready within 60 s; its log ends: ...",), {}),
    (DistributedError, ("the job did not finish",), {}),
    (PauseUnsupported, ("a distributed job cannot pause: stop it instead",), {}),
    (WorkerFailed, (1, "ValueError", "boom", "Traceback (most recent call last):\n...", 0.2), {}),
    (WorkerTimeout, ([1], 30.0), {}),
    (WorkersLost, ("the workers ended without reporting",), {}),
    (BackendUnavailable, ("backend 'horovod' is not available: ...",), {}),
    (_Usage, ("%%distributed: unknown option(s) --x",), {}),
    (NltkDataError, ("NLTK package 'stopwords' is missing: /data/nltk_data/packages/corpora/stopwords.zip",), {}),
    (WordNetMissingError, ("WordNet not found: sudo apt-get install wordnet-base wordnet-sense-index",), {}),
    (OfflineError, ("textattack tried to download word_embeddings/paragramcf: dsopt runs textattack offline",), {}),
    (NltkDataMissing, ("NLTK data missing in /x: wordnet. Build it with `dsopt data nltk --dest /x`",), {}),
]


def _raise(cls, args, kwargs):
    raise cls(*args, **kwargs)


def test_every_dsopt_error_class_is_listed():
    """A new exception class in src/dsopt must be added to ERRORS (so its pickling is tested)."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "dsopt"
    defined = set()
    for path in src.rglob("*.py"):
        defined |= set(re.findall(r"^class (\w+)\((?:\w+\.)?\w*(?:Error|Exception)\b", path.read_text(), flags=re.MULTILINE))
    assert defined <= {cls.__name__ for cls, _, _ in ERRORS}, defined - {cls.__name__ for cls, _, _ in ERRORS}


class _SpawnedWorker:
    """One spawned worker process shared by the tests of this module (starting one per error class cost
    ~0.5 s each); a pool that an unpicklable error broke is replaced, so one failure does not hide others."""

    def __init__(self):
        self.pool = None

    def submit(self, *args):
        if self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self.pool.submit(*args)

    def reset(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


@pytest.fixture(scope="module")
def worker():
    w = _SpawnedWorker()
    yield w
    w.reset()


@pytest.mark.parametrize("cls, args, kwargs", ERRORS, ids=[e[0].__name__ for e in ERRORS])
def test_error_raised_in_a_spawned_worker_arrives_intact(cls, args, kwargs, worker):
    expected = cls(*args, **kwargs)
    try:
        with pytest.raises(cls) as info:
            worker.submit(_raise, cls, args, kwargs).result()
    except BaseException:
        worker.reset()  # e.g. BrokenProcessPool: the next test gets a fresh worker
        raise
    assert str(info.value) == str(expected) and len(str(expected)) > 20
    assert {k: v for k, v in vars(info.value).items()} == {k: v for k, v in vars(expected).items()}
