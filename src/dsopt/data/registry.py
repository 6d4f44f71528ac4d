"""The registry of real datasets dsopt knows how to download, verify and parse.

Each entry records what a user must know before using the data (task, licence, citation), the
files it stores, laid out exactly like the project's offline folder ``shared/data`` (relative
path + SHA-256 + size), and where to download them (canonical URLs first, then pinned fallbacks).
The hashes are the published bytes; a file that does not match is never used.

``digits`` is scikit-learn's bundled ``load_digits``: it needs no file and no network, which
makes it the offline default of the workbench.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from dsopt.util.validation import check_choice


@dataclass(frozen=True)
class FileSpec:
    """One stored file: path relative to the data dir (as in ``shared/data``), SHA-256, size in bytes."""

    relpath: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ZipSource:
    """A zip archive at ``urls`` (tried in order) whose ``members`` are extracted to relpaths.

    ``members`` maps an archive member name to the relative path it is stored under. When
    ``keep_as`` is set, the archive itself is a registered file stored at that relpath (and a
    valid local copy is reused instead of downloading again). ``sha256`` (if known) is checked
    before anything is extracted.
    """

    urls: tuple[str, ...]
    members: Mapping[str, str]
    sha256: str | None = None
    keep_as: str | None = None

    def provides(self) -> set[str]:
        out = set(self.members.values())
        if self.keep_as:
            out.add(self.keep_as)
        return out


@dataclass(frozen=True)
class FileSource:
    """A single file downloadable from ``urls`` (tried in order), stored at ``relpath``."""

    relpath: str
    urls: tuple[str, ...]

    def provides(self) -> set[str]:
        return {self.relpath}


Source = ZipSource | FileSource


@dataclass(frozen=True)
class DatasetInfo:
    """Everything known about one dataset, before any file is read.

    ``variants`` maps a variant name to the relpaths a :func:`dsopt.data.load` of that variant
    needs (``None`` key when the dataset has no variants). ``files`` are all stored files
    (what ``fetch`` downloads and ``verify`` checks).
    """

    name: str
    description: str
    task: str
    rows: str
    licence: str
    citation: str
    homepage: str
    folder: str | None
    files: tuple[FileSpec, ...] = ()
    sources: tuple[Source, ...] = ()
    variants: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)
    default_variant: str | None = None
    class_names: tuple[str, ...] = ()

    @property
    def bundled(self) -> bool:
        """True when the data ships with a library (no files, no network)."""
        return not self.files

    def file(self, relpath: str) -> FileSpec:
        for spec in self.files:
            if spec.relpath == relpath:
                return spec
        raise KeyError(relpath)

    def urls(self) -> list[str]:
        """All canonical/fallback URLs, in the order they are tried."""
        return [u for s in self.sources for u in s.urls]


_FPB_DIR = "financial_phrasebank/FinancialPhraseBank-v1.0"
_FPB_ZIP = "financial_phrasebank/FinancialPhraseBank-v1.0.zip"
_FPB_VARIANTS = {"allagree": "AllAgree", "75": "75Agree", "66": "66Agree", "50": "50Agree"}

FINANCIAL_PHRASEBANK = DatasetInfo(
    name="financial_phrasebank",
    description="Financial PhraseBank v1.0: English financial-news sentences labelled by sentiment "
    "by 5-8 annotators; variants by agreement level (allagree, 75, 66, 50; nested).",
    task="text classification (3-class sentiment)",
    rows="2,264 / 3,453 / 4,217 / 4,846 (allagree/75/66/50)",
    licence="CC BY-NC-SA 3.0 (non-commercial)",
    citation="Malo, P., Sinha, A., Korhonen, P., Wallenius, J., & Takala, P. (2014). Good debt or bad "
    "debt: Detecting semantic orientations in economic texts. JASIST 65(4), 782-796. "
    "doi:10.1002/asi.23062",
    homepage="https://huggingface.co/datasets/takala/financial_phrasebank",
    folder="financial_phrasebank",
    files=(
        FileSpec(_FPB_ZIP, "0e1a06c4900fdae46091d031068601e3773ba067c7cecb5b0da1dcba5ce989a6", 681890),
        FileSpec(f"{_FPB_DIR}/License.txt", "fa4f941ef92f40d55dd34ddea45d96a20672607d152698bc160f8db3af5e36c7", 394),
        FileSpec(f"{_FPB_DIR}/README.txt", "80241dd9639af987cd87bbb2d8872392c6d45596a488ebefca2d425da46f5809", 4013),
        FileSpec(f"{_FPB_DIR}/Sentences_50Agree.txt", "bb1b4df6de05d50b146f87a9d4d024b69f947066445f2384f014c3564c1612c8", 671355),
        FileSpec(f"{_FPB_DIR}/Sentences_66Agree.txt", "725adb1de7d33977b0c2f63c33d5ad60e3c623b916856e18663915dfe47b6981", 580254),
        FileSpec(f"{_FPB_DIR}/Sentences_75Agree.txt", "a7ca39fb9dc60aed1c323ee635494aed4acdfc05e0349a9e74367502325303a4", 466991),
        FileSpec(f"{_FPB_DIR}/Sentences_AllAgree.txt", "5fb370b3005b9a2759f708849a691ad2e4d2593d4c995c1afde229398a516594", 299636),
    ),
    sources=(
        ZipSource(
            urls=(
                "https://huggingface.co/datasets/takala/financial_phrasebank/resolve/main/data/FinancialPhraseBank-v1.0.zip",
                # Same bytes, no login: the commit of yya518/FinBERT that still had the file.
                "https://github.com/yya518/FinBERT/raw/be92b390d79c1e940e3dc48a0eac8554892c63ef/FinancialPhraseBank-v1.0.zip",
            ),
            members={
                f"FinancialPhraseBank-v1.0/{n}": f"{_FPB_DIR}/{n}"
                for n in ["License.txt", "README.txt"] + [f"Sentences_{v}.txt" for v in _FPB_VARIANTS.values()]
            },
            sha256="0e1a06c4900fdae46091d031068601e3773ba067c7cecb5b0da1dcba5ce989a6",
            keep_as=_FPB_ZIP,
        ),
    ),
    variants={k: (f"{_FPB_DIR}/Sentences_{v}.txt",) for k, v in _FPB_VARIANTS.items()},
    default_variant="allagree",
    class_names=("negative", "neutral", "positive"),
)

SMS_SPAM_COLLECTION = DatasetInfo(
    name="sms_spam_collection",
    description="SMS Spam Collection v.1: 5,574 English SMS messages tagged ham or spam.",
    task="text classification (binary, imbalanced: 13.4% spam)",
    rows="5,574 (747 spam)",
    licence="CC BY 4.0",
    citation="Almeida, T. A., Gomez Hidalgo, J. M., & Yamakami, A. (2011). Contributions to the Study "
    "of SMS Spam Filtering: New Collection and Results. DocEng'11.",
    homepage="https://archive.ics.uci.edu/dataset/228/sms+spam+collection",
    folder="sms_spam_collection",
    files=(
        FileSpec("sms_spam_collection/SMSSpamCollection", "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", 477907),
        FileSpec("sms_spam_collection/readme", "8753cd2d3cab68f80c8257851b8c2037778c267f55accb6fd1b5a2e32d36a84e", 5868),
        FileSpec("sms_spam_collection/smsspamcollection.zip", "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3", 203415),
    ),
    sources=(
        ZipSource(
            urls=(
                "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
                "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip",
            ),
            members={
                "SMSSpamCollection": "sms_spam_collection/SMSSpamCollection",
                "readme": "sms_spam_collection/readme",
            },
            sha256="1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3",
            keep_as="sms_spam_collection/smsspamcollection.zip",
        ),
    ),
    variants={None: ("sms_spam_collection/SMSSpamCollection",)},
    class_names=("ham", "spam"),
)

_SST2_PIN = "https://raw.githubusercontent.com/eyalbd2/Reproducing-AutoPrompt/6288fb5bec9c572f2492875ae0111df5b6daed11/glue_data/SST-2"

SST2 = DatasetInfo(
    name="sst2",
    description="GLUE SST-2: Stanford Sentiment Treebank movie-review sentences and phrases, binary "
    "sentiment. Variants train and dev; the GLUE test split has no labels, so dev is the test set.",
    task="text classification (binary sentiment)",
    rows="67,349 train / 872 dev",
    licence="no explicit licence (research use)",
    citation="Socher, R., et al. (2013). Recursive Deep Models for Semantic Compositionality Over a "
    "Sentiment Treebank. EMNLP. Wang, A., et al. (2019). GLUE. ICLR.",
    homepage="https://gluebenchmark.com/",
    folder="sst2",
    files=(
        FileSpec("sst2/dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", 94931),
        FileSpec("sst2/test.tsv", "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13", 197335),
        FileSpec("sst2/train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", 3806081),
    ),
    sources=(
        ZipSource(
            urls=("https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",),
            members={f"SST-2/{n}.tsv": f"sst2/{n}.tsv" for n in ("train", "dev", "test")},
            sha256="d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa",
        ),
        # Fallback: the same bytes pinned at a GitHub commit (train_full.tsv is GLUE's train.tsv).
        FileSource("sst2/train.tsv", (f"{_SST2_PIN}/train_full.tsv",)),
        FileSource("sst2/dev.tsv", (f"{_SST2_PIN}/dev.tsv",)),
        FileSource("sst2/test.tsv", (f"{_SST2_PIN}/test.tsv",)),
    ),
    variants={"train": ("sst2/train.tsv",), "dev": ("sst2/dev.tsv",)},
    default_variant="train",
    class_names=("negative", "positive"),
)

SYMPTOM2DISEASE = DatasetInfo(
    name="symptom2disease",
    description="Symptom2Disease (Kaggle): short patient-voice symptom descriptions, 24 diagnoses x 50. "
    "Stands in for gretelai/symptom_to_diagnosis (derived from it). Partly synthetic, not clinical.",
    task="text classification (24 classes, balanced)",
    rows="1,200 (24 classes)",
    licence="unconfirmed (CC0 1.0 per third parties)",
    citation="Niyar R. Barman, Symptom2Disease (Kaggle dataset, 2023).",
    homepage="https://www.kaggle.com/datasets/niyarrbarman/symptom2disease",
    folder="symptom2disease",
    files=(
        FileSpec("symptom2disease/Symptom2Disease.csv", "00c14a2f38c041179d24a91de80c4b3a9d105f58982aa52e96a7226ca994dba8", 229852),
    ),
    sources=(
        # Kaggle needs an account; the same bytes are pinned in mistralai/cookbook.
        FileSource(
            "symptom2disease/Symptom2Disease.csv",
            ("https://raw.githubusercontent.com/mistralai/cookbook/0909165c235a3c937de06c22abf5f4a540802697/data/Symptom2Disease.csv",),
        ),
    ),
    variants={None: ("symptom2disease/Symptom2Disease.csv",)},
)

CREDIT_CARD_DEFAULT = DatasetInfo(
    name="credit_card_default",
    description="Default of Credit Card Clients (Taiwan, 2005), CSV edition: 23 numeric features, "
    "target = default next month (22.12% positive). Imbalanced tabular classification.",
    task="tabular classification (binary, imbalanced: 22.1% default)",
    rows="30,000 (6,636 defaults)",
    licence="CC BY 4.0",
    citation="Yeh, I. C., & Lien, C. H. (2009). The comparisons of data mining techniques for the "
    "predictive accuracy of probability of default of credit card clients. Expert Systems with "
    "Applications, 36(2), 2473-2480.",
    homepage="https://archive.ics.uci.edu/dataset/350/default+of+credit+card+clients",
    folder="credit_card_default",
    files=(
        FileSpec("credit_card_default/UCI_Credit_Card.csv", "a0f0ab49d6326671d6cd83be5c88dcf18007025fe9a53ecd699119c871176ca1", 2862995),
    ),
    sources=(
        FileSource(
            "credit_card_default/UCI_Credit_Card.csv",
            (
                "https://huggingface.co/datasets/scikit-learn/credit-card-clients/resolve/f809522649eaf948ad40a11ed575c4bb4d4460c1/UCI_Credit_Card.csv",
                "https://raw.githubusercontent.com/FenyGeri/CreditCardDefaults/f9a9f0abd2e29022ee6b5e45cc865cca2f12a47e/UCI_Credit_Card.csv",
            ),
        ),
    ),
    variants={None: ("credit_card_default/UCI_Credit_Card.csv",)},
    class_names=("no_default", "default"),
)

DIGITS = DatasetInfo(
    name="digits",
    description="scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test part): 64 pixel "
    "features in 0..16. Ships with scikit-learn, so it works with no file and no network.",
    task="image classification (10 classes)",
    rows="1,797",
    licence="CC BY 4.0",
    citation="Alpaydin, E., & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI "
    "Machine Learning Repository. doi:10.24432/C50P49",
    homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
    folder=None,
    variants={None: ()},
    class_names=tuple(str(i) for i in range(10)),
)

DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (FINANCIAL_PHRASEBANK, SMS_SPAM_COLLECTION, SST2, SYMPTOM2DISEASE, CREDIT_CARD_DEFAULT, DIGITS)
}

ALIASES = {
    "fpb": "financial_phrasebank",
    "sms": "sms_spam_collection",
    "sms_spam": "sms_spam_collection",
    "sst-2": "sst2",
    "credit": "credit_card_default",
}


def names() -> list[str]:
    """Names of all registered datasets, in registry order."""
    return list(DATASETS)


def get_info(name: str) -> DatasetInfo:
    """Registry entry for ``name`` (a few short aliases such as ``fpb`` are accepted).

    Raises :class:`dsopt.util.validation.ParameterError` listing the known names.
    """
    key = ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    check_choice("name", key, DATASETS)
    return DATASETS[key]


def resolve_variant(info: DatasetInfo, variant) -> str | None:
    """Normalise ``variant`` for ``info`` (``None`` -> default); raise ParameterError if unknown.

    For Financial PhraseBank, ``"AllAgree"``, ``"75Agree"`` and the integer ``75`` are accepted
    as spellings of ``"allagree"`` and ``"75"``.
    """
    choices = [v for v in info.variants if v is not None]
    if variant is None:
        return info.default_variant
    if not choices:
        check_choice("variant", variant, [None])
    v = str(variant).lower()
    if info.name == "financial_phrasebank" and v.endswith("agree") and v != "allagree":
        v = v[: -len("agree")]
    if v not in choices:
        check_choice("variant", variant, choices)
    return v
