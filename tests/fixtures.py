"""Small raw files that reproduce every trap of the real ones, written by the tests themselves."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from textrnn.config import SentimentNeuralParams, VectorizerParams
from textrnn.sentiment.data import UCI_FILES

# A sentence with quote characters (a CSV reader merges lines at them), one with U+2028 and one
# with U+0085 (str.splitlines breaks lines there), CRLF line ends on one line.
TRAPS = [
    '"The best film ever," he said.  \t1',
    "\"Not worth it... I'd say no.\t0",  # an unbalanced quote opens a CSV field
    "Line\u2028separator inside a sentence.\t1",
    "Next\x85line inside a sentence.\t0\r",
]


def uci_lines(n_per_label: int = 500, traps: bool = True) -> str:
    lines = list(TRAPS) if traps else []
    pos = sum(line.rstrip("\r").endswith("1") for line in lines)
    neg = len(lines) - pos
    lines += [f"good sentence number {i}\t1" for i in range(n_per_label - pos)]
    lines += [f"bad sentence number {i}\t0" for i in range(n_per_label - neg)]
    return "\n".join(lines) + "\n"


def write_uci_zip(path: Path, *, contents: dict[str, str] | None = None) -> Path:
    """A zip with the upstream layout; ``contents`` replaces members (origin -> text)."""
    contents = contents or {}
    with zipfile.ZipFile(path, "w") as archive:
        for origin, filename in UCI_FILES.items():
            text = contents.get(origin, uci_lines())
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            archive.writestr(f"sentiment labelled sentences/{filename}", data)
        archive.writestr("sentiment labelled sentences/readme.txt", "fixture\n")
    return path


def write_imdb_tar(path: Path, per_class: int = 12500, review: str | None = None,
                   unlabelled: int = 0) -> Path:
    """A tar.gz with the upstream member paths; every review repeats ``review`` with its id;
    ``unlabelled`` reviews in train/unsup/ (upstream has 50,000)."""
    review = review or "A fine film.<br /><br />Really &amp; truly."
    members = [(f"aclImdb/{split}/{polarity}/{i}_7.txt", f"{review} {split} {polarity} {i}")
               for split in ("train", "test") for polarity in ("pos", "neg")
               for i in range(per_class)]
    members += [(f"aclImdb/train/unsup/{i}_0.txt", f"{review} unsup {i}")
                for i in range(unlabelled)]
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


BOOK = "En un lugar de la Mancha, de cuyo nombre no quiero acordarme.\n" * 40


def gutenberg_text(book: str = BOOK) -> str:
    return (
        "\ufeffThe Project Gutenberg eBook of Don Quijote\r\n\r\nLicence header.\r\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK DON QUIJOTE ***\r\n\r\n"
        + book.replace("\n", "\r\n")
        + "\r\n*** END OF THE PROJECT GUTENBERG EBOOK DON QUIJOTE ***\r\nLicence footer.\r\n"
    )


# ----------------------------------------------------------------------------- model kinds

def default_models(task: str = "sentiment") -> dict[str, tuple[str, dict]]:
    """params.yaml's models of ``task``: name -> (kind, what its entry changes), in list order.

    The tests take their lists of models from here and their kinds from the catalog, so a model
    or kind added to params.yaml or textrnn/catalog.py is tested without editing a test."""
    from textrnn.catalog import entry_kind
    from textrnn.config import read_yaml

    train = read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")["train"][task]
    models = {}
    for name in train["models"]:
        entry = dict((train.get("variants") or {}).get(name) or {})
        models[name] = (entry_kind(task, name, entry),
                        {k: v for k, v in entry.items() if k != "kind"})
    return models


DEFAULT_VARIANTS = default_models("sentiment")


def kind_of(task: str, name: str):
    """The catalog kind of a default model name (``bilstm`` -> the lstm kind)."""
    from textrnn.catalog import get_kind

    return get_kind(task, DEFAULT_VARIANTS.get(name, (name, {}))[0])


def variant_changes(name: str) -> dict:
    """What a default model's params.yaml entry changes from its kind's defaults."""
    return dict(DEFAULT_VARIANTS.get(name, (name, {}))[1])


def builder(task: str, name: str):
    """``builder(task, name)(params, **context)``: a model of default model ``name``'s kind."""
    kind = kind_of(task, name)
    return lambda params, **context: kind.build(params, **context)


# ----------------------------------------------------------------------------- sentiment toys

# Small enough that a network trains in a step or two (shared by the model, catalog and
# embedding tests).
VECTORIZER = VectorizerParams(max_tokens=200, max_length=12)


def neural_params(**changes) -> SentimentNeuralParams:
    base = dict(optimizer="lazy_adam", learning_rate=0.01, clipnorm=1.0, batch_size=16, epochs=1,
                patience=1, embedding_dim=8, embedding_init="random", pretrained_norm=10.0,
                vocabulary_from_vectors=True,
                units=8, layers=1, bidirectional=False, dropout=0.1,
                recurrent_dropout=0.0, l2=1e-4, dense_units=8, activation="relu",
                pooling="max_mean", steps_per_execution=2)
    return SentimentNeuralParams(**{**base, **changes})


GOOD = ["great", "lovely", "excellent", "superb", "fine"]
BAD = ["awful", "terrible", "poor", "broken", "boring"]
FILLER = ["the", "film", "phone", "food", "was", "really", "very", "and", "it"]


def toy_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Sentences of 2-9 words; the label says whether the sentiment word is good or bad."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = list(rng.choice(FILLER, size=rng.integers(1, 9)))
        words.insert(int(rng.integers(0, len(words) + 1)), rng.choice(GOOD if positive else BAD))
        texts.append(" ".join(words))
        labels.append("positive" if positive else "negative")
    return texts, labels
