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

from dsopt.util.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["Recipe", "RECIPES", "build_augmenter", "seeded"], "recipes"),
    **dict.fromkeys(["DomainEmbedding", "vocabulary"], "embedding"),
    "FastWordSwap": "swap",
    **dict.fromkeys(["AugmentationPipeline", "Augmentation", "SimilarityFilter", "changed_tokens", "expand",
                     "derive_seed"], "pipeline"),
    "MiniLMVectors": "encode",
    **dict.fromkeys(["AugmentationCache", "VectorStore"], "store"),
    **dict.fromkeys(["import_textattack", "no_downloads", "OfflineError", "NltkDataMissing"], "offline"),
    **dict.fromkeys(["article_recipe", "ARTICLE_CODE"], "article"),
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
