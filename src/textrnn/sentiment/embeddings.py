"""Word vectors learned without labels (PPMI + truncated SVD), to start the sentiment networks from.

UCI Sentiment Labelled Sentences has 2100 training sentences: most words occur once or twice, so
an embedding learned from them alone knows little about a test sentence's words. Counting which
words occur near which in a large unlabelled corpus (the 50k IMDb reviews) and factorising
the positive pointwise mutual information matrix (Levy, Goldberg & Dagan, TACL 2015) gives every
frequent word a vector in a few seconds on a CPU: "awful" lands near "terrible" and "dreadful".

- :func:`tokens` (from :mod:`textrnn.sentiment.text`) splits text exactly as the models'
  ``TextVectorization`` does, so both sides agree on what a word is.
- :func:`learn` counts co-occurrences within ``window`` words (weight 1/distance) and returns
  unit-length vectors for the ``vocabulary`` most frequent words.
- :class:`WordVectors` is what the embed stage saves and the train and tune stages load;
  :meth:`WordVectors.initial_matrix` lines the vectors up with a vectorizer's vocabulary.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textrnn.errors import ParamsError, UserError
from textrnn.sentiment.text import tokens

VECTORS_FILE = "vectors.npy"
WORDS_FILE = "words.txt"
META_FILE = "meta.json"
DEFAULT_DIR = Path("models/embeddings")

def learn(texts: Iterable[str], *, vocabulary: int, dim: int, window: int, smoothing: float,
          seed: int) -> tuple[list[str], np.ndarray]:
    """PPMI-SVD word vectors: (words by falling frequency, float32 ``(len(words), dim)``).

    Each row has unit length. ``smoothing`` raises context counts to that power (0.75 is the
    word2vec value): rare contexts then weigh less in the mutual information.
    """
    import scipy.sparse as sparse
    from sklearn.utils.extmath import randomized_svd

    docs = [tokens(text) for text in texts]
    counts = Counter(word for doc in docs for word in doc)
    words = [word for word, _ in counts.most_common(vocabulary)]
    if len(words) <= dim:
        raise UserError(f"the embedding corpus has {len(words)} distinct words, fewer than "
                        f"embeddings.dim = {dim}: use a bigger corpus or a smaller dim")
    index = {word: i for i, word in enumerate(words)}
    rows, cols, weights = [], [], []
    for doc in docs:
        ids = np.fromiter((index.get(word, -1) for word in doc), dtype=np.int64, count=len(doc))
        for distance in range(1, window + 1):
            left, right = ids[:-distance], ids[distance:]
            both = (left >= 0) & (right >= 0)
            rows.append(left[both])
            cols.append(right[both])
            weights.append(np.full(int(both.sum()), 1.0 / distance))
    n = len(words)
    cooc = sparse.coo_matrix((np.concatenate(weights),
                              (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n)).tocsr()
    cooc = (cooc + cooc.T).tocoo()                       # symmetric window: (n, n)
    total = cooc.sum()
    word_p = np.asarray(cooc.sum(axis=1)).ravel() / total
    context_p = np.asarray(cooc.sum(axis=0)).ravel() ** smoothing
    context_p /= context_p.sum()
    pmi = np.log(cooc.data / total / word_p[cooc.row] / context_p[cooc.col])
    positive = pmi > 0
    ppmi = sparse.csr_matrix((pmi[positive], (cooc.row[positive], cooc.col[positive])),
                             shape=(n, n))
    u, s, _ = randomized_svd(ppmi, dim, random_state=seed)
    vectors = u * np.sqrt(s)                             # (n, dim)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
    return words, vectors.astype("float32")


@dataclass(frozen=True)
class WordVectors:
    words: list[str]
    vectors: np.ndarray          # (len(words), dim), unit rows
    meta: dict
    digest: str = ""             # of the saved files: part of a study's and a backup's identity

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def neighbours(self, word: str, k: int = 8) -> list[str]:
        """The ``k`` words whose vectors are closest (cosine) to ``word``'s; [] if unknown."""
        index = {w: i for i, w in enumerate(self.words)}
        if word not in index:
            return []
        scores = self.vectors @ self.vectors[index[word]]
        return [self.words[i] for i in np.argsort(-scores) if i != index[word]][:k]

    def initial_matrix(self, vocabulary: Sequence[str], *, norm: float,
                       seed: int) -> tuple[np.ndarray, float]:
        """Embedding weights for a vectorizer ``vocabulary`` (index 0 padding, 1 out-of-vocabulary).

        A word with a vector gets it scaled to length ``norm``; others keep Keras' default
        initialisation (uniform in ±0.05). Returns the ``(len(vocabulary), dim)`` matrix and
        the share of the vocabulary's real words that had a vector.
        """
        rng = np.random.default_rng(seed)
        matrix = rng.uniform(-0.05, 0.05, size=(len(vocabulary), self.dim)).astype("float32")
        index = {w: i for i, w in enumerate(self.words)}
        found = [(row, index[word]) for row, word in enumerate(vocabulary)
                 if row >= 2 and word in index]
        if found:
            rows, source = (np.array(side) for side in zip(*found, strict=True))
            matrix[rows] = self.vectors[source] * norm
        return matrix, len(found) / max(1, len(vocabulary) - 2)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        np.save(directory / VECTORS_FILE, self.vectors)
        (directory / WORDS_FILE).write_text("\n".join(self.words) + "\n", encoding="utf-8")
        (directory / META_FILE).write_text(json.dumps(self.meta, indent=2) + "\n", encoding="utf-8")


def load(directory: Path = DEFAULT_DIR) -> WordVectors:
    """The vectors the embed stage wrote; a clear error when there are none."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise UserError(f"{meta_path} is missing: run `dvc repro embed` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("corpus") == "none":
        raise UserError("embeddings.corpus is 'none', so there are no pretrained word vectors: "
                        "set embeddings.corpus: imdb or the model's embedding_init: random")
    try:
        vectors = np.load(directory / VECTORS_FILE, allow_pickle=False)
        # "\n" only: a word may hold a character that str.splitlines() breaks at
        words = (directory / WORDS_FILE).read_text(encoding="utf-8").rstrip("\n").split("\n")
    except (OSError, ValueError) as exc:
        raise UserError(f"{directory}: unreadable word vectors ({exc}); "
                        "run `dvc repro --force embed`") from None
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise UserError(f"{directory}: {len(words)} words but vectors of shape {vectors.shape}; "
                        "run `dvc repro --force embed`")
    from textrnn.handoff import file_digest

    return WordVectors(words, vectors, meta,
                       digest=file_digest(directory / VECTORS_FILE, directory / WORDS_FILE))


def for_model(params: object, key: str, directory: Path = DEFAULT_DIR) -> WordVectors | None:
    """The word vectors a sentiment model's params (at ``key`` in params.yaml) ask for.

    Loaded when ``embedding_init`` is 'pretrained' (after checking that their dimension is the
    model's ``embedding_dim``), None otherwise: a random start, or a scikit-learn model.
    """
    if getattr(params, "embedding_init", "random") != "pretrained":
        return None
    vectors = load(directory)
    check_fits(vectors, params, key)
    return vectors


def check_fits(vectors: WordVectors, params: object, key: str) -> None:
    """One clear error when the model's ``embedding_dim`` (at ``key``) is not the vectors' dim."""
    if vectors.dim != params.embedding_dim:
        raise ParamsError(f"params.yaml: {key}.embedding_dim = {params.embedding_dim} but the "
                          f"pretrained vectors have {vectors.dim} dimensions (embeddings.dim): "
                          "make them equal, or set embedding_init: random")
