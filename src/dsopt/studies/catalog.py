"""Where each chapter's Study lives: :func:`get_study` imports one chapter's study module, on demand.

Kept apart from :mod:`dsopt.studies.study` (the protocol), which the run-key code imports: a module that
names every chapter would put every chapter's code in the static import closure of anything that imports it.
"""
from __future__ import annotations

from dsopt.studies.study import Study


def get_study(chapter_id: str) -> Study:
    """The Study of chapter ``chapter_id`` ("01" ... "07"). Imports that chapter's study module only."""
    if chapter_id == "01":
        from dsopt.studies.lr_restarts import STUDY
    elif chapter_id == "02":
        from dsopt.studies.attention_pruning import STUDY
    elif chapter_id == "03":
        from dsopt.studies.augmentation import STUDY
    elif chapter_id == "04":
        from dsopt.studies.dynamic_weighting import STUDY
    elif chapter_id == "05":
        from dsopt.studies.mixed_precision import STUDY
    elif chapter_id == "06":
        from dsopt.studies.distributed import STUDY
    elif chapter_id == "07":
        from dsopt.studies.monitoring import STUDY
    else:
        raise KeyError(f"no chapter {chapter_id!r}; chapters: {', '.join(CHAPTER_IDS)}")
    return STUDY


#: The chapters, in the article's order.
CHAPTER_IDS = ("01", "02", "03", "04", "05", "06", "07")


def all_studies() -> list[Study]:
    """Every chapter's Study, in chapter order (imports all seven study modules)."""
    return [get_study(c) for c in CHAPTER_IDS]
