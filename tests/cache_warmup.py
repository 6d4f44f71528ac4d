"""Warm, on the idle core, the caches that nbval would otherwise fill at the end of the session.

Two committed notebooks start from a cache, not a stored run, so on a fresh clone nbval fills it first, on one
thread (the notebooks' thread count below ``scale="full"``) while the other core idles:
- chapter 02's spot check (nbval re-executes one stored run per round: the first seed's) and its first model's
  measurements (stored runs, spot-checked too) load its first seed's fine-tuned MiniLM: the weights (90 MB) live in
  ``notebooks/.dsopt-cache/02``; fine-tuning them took 203 s of CI's 32 minutes;
- chapter 07's live replay starts from MiniLM embeddings of its text pools (``.dsopt-cache/07/embeddings``,
  keyed by the texts): 53 s.
This module fills those caches with the same functions, settings and thread count as the notebook (the
registry's defaults, through the notebook's own ``start``) in child processes started when the session begins, at
the lowest priority (nice 19: only CPU the running tests leave idle); a chapter's first nbval cell waits for its
child, then reads the cache as a second run of the notebook would. Children die with pytest (parent-death signal;
their process groups are killed at the end); when one fails, nbval simply computes as before and says why.

Run as a script, it is such a child: ``python tests/cache_warmup.py NN DIR`` (DIR: the notebooks folder).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Chapters whose nbval run starts by filling a cache.
WARMABLE = ("02", "07")


class CacheWarmup:
    """One child process per chapter in :data:`WARMABLE`, started at collection, awaited by the chapter's first
    nbval cell, killed at the end of the session."""

    def __init__(self) -> None:
        self.procs: dict[str, tuple[subprocess.Popen, float, Path]] = {}
        self.reported: set[str] = set()

    def start(self, chapter: str, notebooks: Path, log_dir: Path, *, spot_check_seed: str | None = None) -> None:
        log = log_dir / f"warmup-{chapter}.log"
        env = {**os.environ, **({"DSOPT_SPOT_CHECK_SEED": spot_check_seed} if spot_check_seed else {})}
        # Its own session, whose autogroup the child sets to nice 19 (see _lowest_priority): Linux schedules each
        # session as an autogroup first and applies a process's nice only inside it. A setsid'd child at plain
        # nice 19 took a share equal to the tests' (test_augment 18 s -> 58 s in CI); one kept in pytest's session
        # left JupyterLab's own session half the CPU (the first browser test 88 s -> 138 s).
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), chapter, str(notebooks)],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        self.procs[chapter] = (proc, time.monotonic(), log)

    def wait(self, chapter: str, write, timeout: float = 1800.0) -> None:
        """Block until ``chapter``'s child ends (once); ``write`` gets one line saying what happened."""
        if chapter not in self.procs or chapter in self.reported:
            return
        self.reported.add(chapter)
        proc, t0, log = self.procs[chapter]
        waited = time.monotonic()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            rc = "timeout"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
        what = (f"ready ({tail[-1] if tail else 'no report'})" if rc == 0
                else f"FAILED ({rc}): nbval computes it itself; " + " | ".join(tail))
        write(f"dsopt tests: chapter {chapter}'s cache warmed in a child process: {what}; nbval reached it "
              f"{time.monotonic() - t0:.0f} s after the child started and waited {time.monotonic() - waited:.0f} s")

    def stop(self) -> None:
        for proc, _, _ in self.procs.values():
            self._kill(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _lowest_priority() -> str:
    """nice 19 for this process and for its session's autogroup (Linux), so that it only takes CPU no other
    session wants; says what it could set."""
    os.nice(19)
    try:
        with open("/proc/self/autogroup", "w") as fh:
            fh.write("19")
        return "nice 19, autogroup nice 19"
    except OSError as exc:  # no autogroups here (or not allowed): plain nice only
        return f"nice 19 (autogroup unchanged: {exc.strerror})"


def _defaults(chapter: str) -> dict:
    """The notebook's parameters, validated, with torch's threads set as the notebook's ``start`` sets them."""
    from dsopt.chapters.notebook import start
    from dsopt.chapters.registry import get_chapter

    return start(chapter, {name: param.default for name, param in get_chapter(chapter).params.items()})


def _warm_02(notebooks: Path) -> str:
    """The first seed's model (the first model's measurements) and the one the seeded spot check draws."""
    from dsopt.studies.attention_pruning.fixtures import trained_minilm_classifier
    from dsopt.studies.catalog import get_study
    from dsopt.studies.jobs import spot_check_group_pick, spot_check_seed

    p = _defaults("02")
    seeds = [p["seed"]]
    if spot_check_seed():
        drawn = spot_check_group_pick(spot_check_seed(), get_study("02").seeds(p))
        seeds += [drawn] if drawn != p["seed"] else []
    done = []
    for seed in seeds:
        clf = trained_minilm_classifier(scale=p["scale"], seed=seed, epochs=p["finetune_epochs"], lr=p["finetune_lr"],
                                        cache_dir=notebooks / ".dsopt-cache" / "02", device="cpu", progress=False)
        done.append(f"seed {seed} {'cached already' if clf.info['cached'] else 'fine-tuned'}")
    return ", ".join(done)


def _warm_07(notebooks: Path) -> str:
    from dsopt.studies.catalog import get_study
    from dsopt.studies.monitoring.data import load_features

    cfg = get_study("07").config(_defaults("07"))
    feats = load_features(cfg.scale, cache_dir=notebooks / ".dsopt-cache" / "07" / "embeddings", progress=False)
    return f"embeddings of {len(feats.pools.all_texts())} texts"


def needed_datasets(chapter: str) -> list[str]:
    from dsopt.chapters.registry import get_chapter

    return list(get_chapter(chapter).needed_datasets({}))


if __name__ == "__main__":
    from dsopt.util.lifetime import set_parent_death_signal

    set_parent_death_signal()
    priority = _lowest_priority()  # only CPU the tests leave idle (nbval waits for it if needed)
    chapter, folder = sys.argv[1], Path(sys.argv[2])
    t0 = time.monotonic()
    print(f"chapter {chapter}: {globals()['_warm_' + chapter](folder)} in {time.monotonic() - t0:.0f} s "
          f"({priority})", flush=True)
