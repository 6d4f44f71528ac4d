"""Where each chapter's Study lives: :func:`get_study` imports one chapter's study module, on demand.

Kept apart from :mod:`dsopt.studies.study` (the protocol), which the run-key code imports: a module that
names every chapter would put every chapter's code in the static import closure of anything that imports it.
"""
from __future__ import annotations

from dsopt.studies.study import Study


def get_study(chapter_id: str) -> Study:
    """The Study of chapter ``chapter_id`` ("01" ... "07"). Imports that chapter's study module only."""
    loaders = {"01": _lr_restarts, "02": _attention_pruning, "03": _augmentation, "04": _dynamic_weighting,
               "05": _mixed_precision, "06": _distributed, "07": _monitoring}
    if chapter_id not in loaders:
        raise KeyError(f"no chapter {chapter_id!r}; chapters: {', '.join(loaders)}")
    return loaders[chapter_id]()


def all_studies() -> list[Study]:
    """Every chapter's Study, in chapter order (imports all seven study modules)."""
    return [get_study(c) for c in ("01", "02", "03", "04", "05", "06", "07")]


def _lr_restarts() -> Study:
    from dsopt.studies.lr_restarts import STUDY

    return STUDY


def _attention_pruning() -> Study:
    from dsopt.studies.attention_pruning import STUDY

    return STUDY


def _augmentation() -> Study:
    from dsopt.studies.augmentation import STUDY

    return STUDY


def _dynamic_weighting() -> Study:
    from dsopt.studies.dynamic_weighting import STUDY

    return STUDY


def _mixed_precision() -> Study:
    from dsopt.studies.mixed_precision import STUDY

    return STUDY


def _distributed() -> Study:
    from dsopt.studies.distributed import STUDY

    return STUDY


def _monitoring() -> Study:
    from dsopt.studies.monitoring import STUDY

    return STUDY
