"""dsopt.augment: offline textattack recipes, domain embedding, seeding, cache, similarity filter."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dsopt.util.validation import ParameterError

SENTENCES = [
    "I have been experiencing a skin rash on my arms, legs, and torso for the past few weeks.",
    "My skin has been peeling, especially on my knees, elbows, and scalp.",
    "I have a high fever, chills and a headache, and my joints ache badly.",
    "I have been coughing a lot and I feel short of breath when I climb the stairs.",
    "There is a burning pain in my stomach, and it gets worse after I eat spicy food.",
    "My eyes and skin have turned yellow and my urine is dark.",
]


@pytest.fixture(autouse=True)
def _textattack_importable(nltk_data):
    """textattack reads NLTK's stopwords when imported: tests that import it directly (``AttackedText``,
    its transformations) need the offline NLTK folder on the path first, whatever ran before them."""
    from dsopt.augment.offline import import_textattack

    import_textattack(nltk_data)


@pytest.fixture(scope="module")
def vectors():
    from dsopt.augment.encode import MiniLMVectors

    return MiniLMVectors(None)


@pytest.fixture(scope="module")
def symptom_texts():
    from dsopt.data import load_splits

    return load_splits("symptom2disease", seed=0).train.texts


@pytest.fixture(scope="module")
def embedding(nltk_data, vectors, symptom_texts):
    import nltk

    from dsopt.augment.embedding import DomainEmbedding
    from dsopt.augment.offline import import_textattack

    import_textattack(nltk_data)
    return DomainEmbedding.from_texts(symptom_texts, vectors.words, k=50,
                                      stopwords=nltk.corpus.stopwords.words("english"))


def _pipe(nltk_data, name, embedding=None, vectors=None, threshold=0.0, cache_dir=None, batch_size=64, **kw):
    from dsopt.augment import AugmentationPipeline, Recipe, SimilarityFilter

    return AugmentationPipeline(Recipe(name, **kw), nltk_data=nltk_data, embedding=embedding,
                                filter=SimilarityFilter(vectors, threshold) if vectors is not None else None,
                                cache_dir=cache_dir, batch_size=batch_size)


# -- the domain embedding ------------------------------------------------------------------------------
def test_domain_embedding_nn_matrix_is_what_textattack_uses(embedding, nltk_data):
    from textattack.transformations import WordSwapEmbedding

    e = embedding
    assert len(e) > 500 and all(w == w.lower() for w in e.words_)
    assert "the" not in e.index_ and "fever" in e.index_
    assert (e.nn_[:, 0] == np.arange(len(e))).all()  # column 0 is the word itself (textattack slices [1:])
    assert (np.diff(e.nn_sim_[:, 1:], axis=1) <= 1e-6).all()  # neighbours by decreasing similarity
    ta = e.to_textattack()
    assert ta.nn_matrix is not None
    i = e.index_["fever"]
    assert list(ta.nearest_neighbours(i, 5)) == list(e.nn_[i, 1:6])
    # textattack's swap proposes exactly our neighbours (case recovered from the word)
    swap = WordSwapEmbedding(max_candidates=5, embedding=ta)
    assert swap._get_replacement_words("Fever") == [w.capitalize() for w, _ in e.neighbours("fever", 5)]
    # the cosine textattack computes equals ours
    j = e.nn_[i, 1]
    assert abs(ta.get_cos_sim(int(i), int(j)) - float(e.nn_sim_[i, 1])) < 1e-5


def test_domain_embedding_validation():
    from dsopt.augment.embedding import DomainEmbedding

    with pytest.raises(ParameterError, match="words must be >= 2 distinct"):
        DomainEmbedding(["a", "a"], np.ones((2, 3)))
    with pytest.raises(ParameterError, match="vectors must be"):
        DomainEmbedding(["a", "b"], np.ones((3, 3)))
    e = DomainEmbedding(["cough", "fever", "rash"], np.eye(3) + 0.1, k=50)
    assert e.nn_.shape == (3, 3)  # k capped at V - 1


# -- recipes on known sentences -------------------------------------------------------------------------
def test_embedding_swap_changes_only_content_words_into_close_neighbours(nltk_data, embedding):
    import nltk
    from textattack.shared import AttackedText

    stop = set(nltk.corpus.stopwords.words("english"))
    pipe = _pipe(nltk_data, "embedding_swap", embedding, pct_words_to_swap=0.2, min_cos_sim=0.7)
    rows = pipe.augment(SENTENCES, 3, seed=0)
    n_changed = 0
    for text, row in zip(SENTENCES, rows):
        words = AttackedText(text).words
        for a in row:
            if a.text is None:
                continue
            new = AttackedText(a.text).words
            assert len(new) == len(words)  # a swap never inserts or deletes
            diff = [i for i, (u, v) in enumerate(zip(words, new)) if u != v]
            assert 1 <= len(diff) <= max(int(0.2 * len(words)), 1)
            for i in diff:
                assert words[i] not in stop
                near = dict(embedding.neighbours(words[i].lower(), 50))
                assert new[i].lower() in near and near[new[i].lower()] >= 0.7 - 1e-6
            n_changed += 1
    assert n_changed >= 12


def test_wordnet_swap_uses_wordnet_synonyms(nltk_data):
    from nltk.corpus import wordnet
    from textattack.shared import AttackedText

    rows = _pipe(nltk_data, "wordnet_swap").augment(SENTENCES[:3], 2, seed=1)
    checked = 0
    for text, row in zip(SENTENCES, rows):
        words = AttackedText(text).words
        for a in row:
            assert a.text is not None
            new = AttackedText(a.text).words
            for u, v in zip(words, new):
                if u != v:
                    lemmas = {lemma for s in wordnet.synsets(u) for lemma in s.lemma_names()}
                    assert v in lemmas, (u, v)
                    checked += 1
    assert checked >= 6


def test_synonym_insertion_inserts_and_keeps_every_original_word(nltk_data):
    from textattack.shared import AttackedText

    rows = _pipe(nltk_data, "synonym_insertion", pct_words_to_swap=0.1).augment(SENTENCES[:4], 2, seed=2)
    for text, row in zip(SENTENCES, rows):
        words = AttackedText(text).words
        for a in row:
            new = AttackedText(a.text).words
            k = max(int(0.1 * len(words)), 1)
            assert len(new) == len(words) + k
            it = iter(new)
            assert all(w in it for w in words)  # originals kept, in order
            assert sum(flag for _, flag in a.tokens) >= 1


def test_eda_gives_distinct_augmentations(nltk_data):
    rows = _pipe(nltk_data, "eda", pct_words_to_swap=0.2).augment(SENTENCES, 3, seed=3)
    for text, row in zip(SENTENCES, rows):
        made = [a.text for a in row if a.text]
        assert len(made) == len(set(made)) >= 2 and text not in made


def test_fast_swap_has_textattacks_support(nltk_data, embedding):
    """dsopt's driver and textattack's stock Augmenter reach the same set of sentences (one word swapped)."""
    from textattack.augmentation import Augmenter
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.transformations import WordSwapEmbedding

    from dsopt.augment.recipes import Recipe, build_augmenter, seeded

    text = "My skin has been peeling and itching badly."
    ta = embedding.to_textattack()
    stock = Augmenter(WordSwapEmbedding(max_candidates=10, embedding=ta),
                      [RepeatModification(), StopwordModification(), WordEmbeddingDistance(embedding=ta, min_cos_sim=0.75)],
                      pct_words_to_swap=0.1, transformations_per_example=1)
    fast = build_augmenter(Recipe("embedding_swap", max_candidates=10, min_cos_sim=0.75), nltk_data=nltk_data,
                           embedding=embedding)
    stock_out, fast_out = set(), set()
    for s in range(150):
        with seeded(s):
            stock_out.update(stock.augment(text))
        fast_out.add(fast.augment_one(text, s)[0])
    possible = set()
    from textattack.shared import AttackedText

    at = AttackedText(text)
    for i, w in enumerate(at.words):
        for c in fast.swap.candidates(w):
            if i in StopwordModification()(at, fast.swap.transformation):
                possible.add(at.replace_word_at_index(i, c).printable_text())
    assert stock_out <= possible and fast_out <= possible
    assert len(stock_out & fast_out) >= 0.6 * len(possible) >= 3


def test_recipe_validation_names_the_parameter():
    from dsopt.augment import Recipe

    with pytest.raises(ParameterError, match="recipe must be one of"):
        Recipe("WordEmbeddingAugmenter")
    with pytest.raises(ParameterError, match=r"pct_words_to_swap must be a number in \(0.0, 1.0\]"):
        Recipe("eda", pct_words_to_swap=0)
    with pytest.raises(ParameterError, match="min_cos_sim"):
        Recipe("embedding_swap", min_cos_sim=2)
    with pytest.raises(ParameterError, match="embedding_swap needs a DomainEmbedding"):
        Recipe("embedding_swap").key()


def test_missing_wordnet_is_an_error_that_says_how_to_install(tmp_path, nltk_data):
    import shutil

    from dsopt.augment import NltkDataMissing, Recipe, build_augmenter

    only_stop = tmp_path / "nltk"
    shutil.copytree(Path(nltk_data) / "corpora" / "stopwords", only_stop / "corpora" / "stopwords")
    with pytest.raises(NltkDataMissing) as exc:
        build_augmenter(Recipe("eda"), nltk_data=only_stop)
    assert "apt-get install wordnet-base wordnet-sense-index" in str(exc.value)
    assert "dsopt data nltk" in str(exc.value)


# -- seeding, batching, cache, filter -------------------------------------------------------------------
def test_same_seed_same_output_whatever_the_batch(nltk_data, embedding):
    a = _pipe(nltk_data, "embedding_swap", embedding).raw(SENTENCES, 3, seed=7)
    b = _pipe(nltk_data, "embedding_swap", embedding).raw(SENTENCES[::-1], 3, seed=7)[::-1]
    c = _pipe(nltk_data, "embedding_swap", embedding).raw(SENTENCES[2:3], 1, seed=7)
    assert a == b
    assert c[0] == a[2][:1]  # one augmentation is the first of three
    d = _pipe(nltk_data, "embedding_swap", embedding).raw(SENTENCES, 3, seed=8)
    assert d != a
    # textattack's stock augmenters too (global random seeded per augmentation), and the global RNG is untouched
    random.seed(123)
    before = random.random()
    random.seed(123)
    e1 = _pipe(nltk_data, "eda").raw(SENTENCES[:3], 2, seed=5)
    assert random.random() == before
    e2 = _pipe(nltk_data, "eda", batch_size=1).raw(SENTENCES[:3], 2, seed=5)
    assert e1 == e2


def test_cache_hits_and_corrupt_entries_are_recomputed(nltk_data, embedding, tmp_path):
    from dsopt.augment.store import text_key

    p1 = _pipe(nltk_data, "embedding_swap", embedding, cache_dir=tmp_path)
    first = p1.raw(SENTENCES, 3, seed=0)
    assert p1.generated >= len(SENTENCES) * 3
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == len(SENTENCES) and not list(tmp_path.rglob("*.part"))
    p2 = _pipe(nltk_data, "embedding_swap", embedding, cache_dir=tmp_path)
    assert p2.raw(SENTENCES, 3, seed=0) == first and p2.generated == 0 and p2.cache.hits == len(SENTENCES)
    # truncate one entry, give another a foreign key: both are recomputed, to the same result
    key0 = text_key(SENTENCES[0], p2.recipe_key, 0)
    p2.cache.path(key0).write_text('{"key": "')
    entry = json.loads(p2.cache.path(text_key(SENTENCES[1], p2.recipe_key, 0)).read_text())
    entry["key"] = "0" * 64
    p2.cache.path(text_key(SENTENCES[1], p2.recipe_key, 0)).write_text(json.dumps(entry))
    p3 = _pipe(nltk_data, "embedding_swap", embedding, cache_dir=tmp_path)
    assert p3.raw(SENTENCES, 3, seed=0) == first
    assert p3.cache.corrupt == 2 and 0 < p3.generated <= 2 * 3 * 4
    assert json.loads(p3.cache.path(key0).read_text())["key"] == key0
    # asking for more extends the cached entry (the first 3 stay)
    more = p3.raw(SENTENCES[:1], 5, seed=0)[0]
    assert more[:3] == first[0]


def test_similarity_filter(nltk_data, vectors, embedding):
    from dsopt.augment import SimilarityFilter

    f = SimilarityFilter(vectors, threshold=0.8)
    s = f.scores([SENTENCES[0], SENTENCES[0], SENTENCES[0]],
                 [SENTENCES[0], SENTENCES[0].replace("rash", "eruption"), "The stock market fell sharply today."])
    assert abs(s[0] - 1) < 1e-5 and 0.8 < s[1] < 1 and s[2] < 0.3
    assert f.keep([SENTENCES[0]] * 2, [SENTENCES[0], "The stock market fell sharply today."]).tolist() == [True, False]
    with pytest.raises(ParameterError, match="threshold"):
        SimilarityFilter(vectors, 1.5)
    # the filter applies after the cache: another threshold never re-augments
    loose = _pipe(nltk_data, "eda", vectors=vectors, threshold=0.0)
    rows = loose.augment(SENTENCES, 3, seed=1)
    sims = [a.similarity for r in rows for a in r if a.text]
    cut = float(np.median(sims))
    strict = _pipe(nltk_data, "eda", vectors=vectors, threshold=cut)
    strict._augmenter = loose.augmenter
    srows = strict.augment(SENTENCES, 3, seed=1)
    assert [a.text for r in srows for a in r] == [a.text for r in rows for a in r]
    kept = [a.kept for r in srows for a in r if a.text]
    assert kept == [s >= cut for s in sims] and 0 < sum(kept) < len(kept)


def test_vector_store_survives_a_corrupt_shard(tmp_path, vectors):
    from dsopt.augment.encode import MiniLMVectors

    v1 = MiniLMVectors(tmp_path)
    e = v1.sentences(SENTENCES[:2])
    assert v1.encoded == 2
    shards = list((tmp_path / "sentences").glob("*.npz"))
    (tmp_path / "sentences" / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    v2 = MiniLMVectors(tmp_path)
    assert np.allclose(v2.sentences(SENTENCES[:2]), e) and v2.encoded == 0 and v2._sent.skipped_shards == 1
    assert len(shards) == 1
    # the cached embedding is the one minilm_embed computes (dsopt's MiniLM, mean pooling, unit norm)
    from dsopt.models import minilm_embed

    assert np.allclose(minilm_embed(SENTENCES[:2]).numpy(), e, atol=1e-5)


# -- the article's recipe, literally --------------------------------------------------------------------
def test_article_recipe_fails_as_documented(nltk_data, embedding):
    from dsopt.augment.article import article_recipe, format_article_report

    rep = article_recipe(nltk_data, embedding)
    s1, s2, s3 = rep["steps"]
    assert (s1["error"], s2["error"], s3["error"]) == ("ImportError", "OfflineError", "TypeError")
    assert "WordEmbeddingAugmenter" in s1["message"]
    assert "word_embeddings/paragramcf" in s2["message"]  # it starts downloading counter-fitted GloVe
    assert "action" in s3["message"]
    assert "transformations_per_example" in rep["augmenter_parameters"] and "action" not in rep["augmenter_parameters"]
    assert "ImportError" in format_article_report(rep)


# -- no network anywhere ------------------------------------------------------------------------------------
GUARDED = textwrap.dedent('''
    import socket, sys
    attempts = []
    def refuse(*a, **k):
        attempts.append(a[1:2] or a[:1])
        raise OSError("network forbidden by the test")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    from dsopt.data.nltk import ensure_nltk_data
    root = ensure_nltk_data()
    from dsopt.augment import AugmentationPipeline, DomainEmbedding, MiniLMVectors, Recipe, SimilarityFilter, RECIPES
    from dsopt.augment.article import article_recipe
    from dsopt.augment.offline import import_textattack
    import_textattack(root)
    v = MiniLMVectors(None)
    texts = ["I have a high fever and chills.", "My skin is itchy and red with a rash on my arms."]
    emb = DomainEmbedding.from_texts(texts * 2, v.words)
    import json
    out = {}
    for name in RECIPES:
        rows = AugmentationPipeline(Recipe(name, pct_words_to_swap=0.3, min_cos_sim=0.0), nltk_data=root, embedding=emb,
                                    filter=SimilarityFilter(v, 0.0)).augment(texts, 2, seed=0)
        assert any(a.text for r in rows for a in r), name
        out[name] = [[a.text for a in r] for r in rows]
    rep = article_recipe(root, emb)
    assert rep["steps"][1]["error"] == "OfflineError"
    print("ATTEMPTS", len(attempts))
    print("OUT", json.dumps(out, sort_keys=True))
''')


def test_everything_runs_with_the_network_forbidden_and_reproduces_across_processes(tmp_path):
    """Fresh NLTK folder and textattack cache, every socket refused: build, import, all recipes, the filter.

    Run twice with different Python hash seeds: textattack's WordNet candidates and EDA's results come out
    of sets of strings, whose order follows the hash seed; dsopt sorts them, so both processes agree.
    """
    outs = []
    procs = {}
    for hash_seed in ("1", "2"):  # the two processes run at once (separate folders): one waits, not two
        env = {**os.environ, "DSOPT_NLTK_DATA": str(tmp_path / f"nltk{hash_seed}"), "NLTK_DATA": "",
               "DSOPT_TA_CACHE": str(tmp_path / f"ta{hash_seed}"), "DSOPT_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "PYTHONHASHSEED": hash_seed}
        procs[hash_seed] = subprocess.Popen([sys.executable, "-c", GUARDED], env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
    try:
        for hash_seed, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=900)
            r = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
            assert r.returncode == 0, r.stderr[-3000:]
            assert "ATTEMPTS 0" in r.stdout, r.stdout + r.stderr[-2000:]
            assert (tmp_path / f"ta{hash_seed}" / "post_install_check_3").is_file()
            outs.append(next(line for line in r.stdout.splitlines() if line.startswith("OUT ")))
    finally:  # a failure or timeout leaves no process behind
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert outs[0] == outs[1]
