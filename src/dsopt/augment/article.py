"""The article's augmentation recipe, run literally against textattack 0.3.11, and what happens.

The article (CLAIMS.md, row 03) builds a textattack ``WordEmbeddingAugmenter`` with three
transformations per example, ``action="insert"`` and the embedding model paraphrase-MiniLM-L6-v2.
:func:`article_recipe` executes that code and then the nearest things textattack does have, each in
its own namespace, and reports every outcome (the exception type and message, or the result). Run
inside :func:`~dsopt.augment.offline.no_downloads`, so the GloVe download that textattack's real
``EmbeddingAugmenter`` starts at construction is reported instead of attempted.
"""
from __future__ import annotations

import inspect
import os
import re
import traceback

from dsopt.augment.offline import import_textattack, no_downloads

#: The article's recipe, as it gives it.
ARTICLE_CODE = '''\
from textattack.augmentation import WordEmbeddingAugmenter

augmenter = WordEmbeddingAugmenter(
    transformations_per_example=3,
    action="insert",
    embedding_model="paraphrase-MiniLM-L6-v2",
)
augmented = augmenter.augment(text)
'''

#: The real class with the nearest name, with the article's arguments.
NEAREST_CLASS_CODE = '''\
from textattack.augmentation import EmbeddingAugmenter

augmenter = EmbeddingAugmenter(
    transformations_per_example=3,
    action="insert",
    embedding_model="paraphrase-MiniLM-L6-v2",
)
'''

#: textattack's Augmenter with an embedding that needs no download (dsopt's), and the article's arguments.
ARGUMENTS_CODE = '''\
from textattack.augmentation import Augmenter
from textattack.transformations import WordSwapEmbedding

augmenter = Augmenter(
    transformation=WordSwapEmbedding(embedding=domain_embedding.to_textattack()),
    transformations_per_example=3,
    action="insert",
    embedding_model="paraphrase-MiniLM-L6-v2",
)
'''


def _portable(message: str) -> str:
    """The message without this machine's install paths (``.../site-packages/textattack/x.py`` -> ``textattack/x.py``)."""
    return re.sub(r"[^\s()'\"]*[/\\]site-packages[/\\]", "", message)


def _run(code: str, namespace: dict) -> dict:
    try:
        exec(compile(code, "<article recipe>", "exec"), namespace)  # noqa: S102 - the point is to run it
    except BaseException as exc:  # report whatever textattack raises
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return {"code": code, "ok": False, "error": type(exc).__name__, "message": _portable(str(exc).splitlines()[0][:300]),
                "where": traceback.extract_tb(exc.__traceback__)[-1].name}
    return {"code": code, "ok": True, "error": None, "message": "ran", "where": None}


def article_recipe(nltk_data: str | os.PathLike, domain_embedding=None, text: str = "I have a high fever.") -> dict:
    """Run the article's code, then the nearest real class, then the arguments on textattack's Augmenter.

    Returns ``{"steps": [{"title", "code", "ok", "error", "message", "where"}], "augmenter_parameters",
    "embedding_augmenter_source"}``: the accepted parameters of ``textattack.augmentation.Augmenter`` and
    what ``EmbeddingAugmenter`` builds, read from the installed textattack.
    """
    import_textattack(nltk_data)
    from textattack.augmentation import Augmenter, EmbeddingAugmenter

    steps = []
    with no_downloads():
        steps.append({"title": "the article's code", **_run(ARTICLE_CODE, {"text": text})})
        steps.append({"title": "the nearest real class, with the article's arguments", **_run(NEAREST_CLASS_CODE, {})})
        if domain_embedding is not None:
            steps.append({"title": "textattack's Augmenter, an embedding that needs no download, the article's arguments",
                          **_run(ARGUMENTS_CODE, {"domain_embedding": domain_embedding})})
    params = [p for p in inspect.signature(Augmenter.__init__).parameters if p != "self"]
    return {"steps": steps, "augmenter_parameters": params,
            "embedding_augmenter_source": inspect.getsource(EmbeddingAugmenter.__init__).strip()}


def format_article_report(report: dict) -> str:
    """The outcomes as plain text: one block per step (code, then the result)."""
    lines = []
    for i, s in enumerate(report["steps"], 1):
        outcome = "runs" if s["ok"] else f"{s['error']}: {s['message']}"
        lines.append(f"[{i}] {s['title']}\n{s['code'].rstrip()}\n--> {outcome}\n")
    lines.append("textattack.augmentation.Augmenter accepts: " + ", ".join(report["augmenter_parameters"]))
    return "\n".join(lines)
