"""Domain text augmentation on textattack 0.3.11, fully offline (chapter 03).

* :mod:`~dsopt.augment.offline` -- import/run textattack with no network (NLTK data, no downloads).
* :mod:`~dsopt.augment.embedding` -- a domain word embedding from the training vocabulary (MiniLM word
  vectors, nearest-neighbour matrix) for textattack's embedding swap.
* :mod:`~dsopt.augment.recipes` -- embedding swap, WordNet swap, synonym insertion, EDA.
* :mod:`~dsopt.augment.swap` -- dsopt's driver of textattack word swaps (cached candidate lookups).
* :mod:`~dsopt.augment.pipeline` -- seeded, batched, cached augmentation + the MiniLM similarity filter.
* :mod:`~dsopt.augment.encode` -- cached MiniLM sentence embeddings and word vectors.
* :mod:`~dsopt.augment.article` -- the article's recipe, literally, and what it does.

Pure technique code: it gets the NLTK data folder as an argument (``dsopt.data.nltk`` builds it).
Names are loaded lazily so that importing this package does not import textattack or torch.
"""
from __future__ import annotations

_EXPORTS = {
    "Recipe": "dsopt.augment.recipes", "RECIPES": "dsopt.augment.recipes", "build_augmenter": "dsopt.augment.recipes",
    "seeded": "dsopt.augment.recipes", "DomainEmbedding": "dsopt.augment.embedding", "vocabulary": "dsopt.augment.embedding",
    "FastWordSwap": "dsopt.augment.swap", "AugmentationPipeline": "dsopt.augment.pipeline",
    "Augmentation": "dsopt.augment.pipeline", "SimilarityFilter": "dsopt.augment.pipeline",
    "changed_tokens": "dsopt.augment.pipeline", "expand": "dsopt.augment.pipeline", "derive_seed": "dsopt.augment.pipeline",
    "MiniLMVectors": "dsopt.augment.encode", "AugmentationCache": "dsopt.augment.store", "VectorStore": "dsopt.augment.store",
    "import_textattack": "dsopt.augment.offline", "no_downloads": "dsopt.augment.offline",
    "OfflineError": "dsopt.augment.offline", "NltkDataMissing": "dsopt.augment.offline",
    "article_recipe": "dsopt.augment.article", "ARTICLE_CODE": "dsopt.augment.article",
}

__all__ = list(_EXPORTS)


def _load(module: str):
    """Import ``module`` (a value of ``_EXPORTS``) with a plain import statement, so that
    tests/test_layout.py sees every module this package depends on."""
    if module == "dsopt.augment.recipes":
        import dsopt.augment.recipes as loaded
    elif module == "dsopt.augment.embedding":
        import dsopt.augment.embedding as loaded
    elif module == "dsopt.augment.swap":
        import dsopt.augment.swap as loaded
    elif module == "dsopt.augment.pipeline":
        import dsopt.augment.pipeline as loaded
    elif module == "dsopt.augment.encode":
        import dsopt.augment.encode as loaded
    elif module == "dsopt.augment.store":
        import dsopt.augment.store as loaded
    elif module == "dsopt.augment.offline":
        import dsopt.augment.offline as loaded
    elif module == "dsopt.augment.article":
        import dsopt.augment.article as loaded
    else:
        raise ImportError(f"{module} is not among dsopt.augment's lazy exports")
    return loaded


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dsopt.augment' has no attribute {name!r}")
    value = getattr(_load(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
