"""Pretrained word vectors: same words as the vectorizer, meaningful neighbours, a faithful
start."""

from __future__ import annotations

import numpy as np
import pytest

from textrnn.errors import ParamsError, UserError
from textrnn.sentiment import embeddings
from textrnn.sentiment.text import make_vectorizer


def _corpus(seed: int = 0) -> list[str]:
    """Sentences where 'great'/'superb' and 'awful'/'dreadful' share their contexts."""
    rng = np.random.default_rng(seed)
    good, bad = ["great", "superb"], ["awful", "dreadful"]
    things = ["film", "movie", "story", "plot", "cast", "ending"]
    sentences = []
    for _ in range(3000):
        if rng.random() < 0.5:
            word, tail = rng.choice(good), rng.choice(["loved it", "a joy", "must see"])
        else:
            word, tail = rng.choice(bad), rng.choice(["hated it", "a bore", "avoid it"])
        sentences.append(f"the {rng.choice(things)} was {word} , {tail} .")
    return sentences


def test_tokens_match_the_models_vectorizer_word_for_word():
    """Upper-case non-ASCII letters stay as they are (the vectorizer folds ASCII only) and a
    no-break space joins words: the word vectors must see the words the models see."""
    texts = ["Don't STOP!  It's <b>great</b>...", "so-so, 10/10; e-mail me @ home", "Café  déjà vu",
             "ÉTÉ Été été ÇA", "İstanbul ΑΒΓ Straße", "naïve\u00a0WORD\ttab\vvt\fff\r\nend",
             "ǅ\u2003Ǳ x\x1cy"]
    vectorizer = make_vectorizer(texts, max_tokens=100, max_length=20)
    vocabulary = vectorizer.get_vocabulary()
    for text in texts:
        ids = vectorizer(np.asarray([text], dtype=object)).numpy()[0]
        keras_words = [vocabulary[i] for i in ids if i != 0]
        assert embeddings.tokens(text) == keras_words
    assert embeddings.tokens("ÉTÉ Été été") == ["ÉtÉ", "Été", "été"]  # three words, as in Keras


def test_words_used_alike_get_close_vectors_of_unit_length():
    words, vectors = embeddings.learn(_corpus(), vocabulary=50, dim=4, window=2, smoothing=0.75,
                                      seed=0)
    assert vectors.shape == (len(words), 4) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    table = embeddings.WordVectors(words, vectors, {})
    cosine = lambda a, b: float(table.vectors[words.index(a)] @ table.vectors[words.index(b)])  # noqa: E731
    assert cosine("great", "superb") > cosine("great", "awful") + 0.3
    assert cosine("awful", "dreadful") > cosine("awful", "superb") + 0.3
    assert table.neighbours("great", k=1) == ["superb"]
    assert table.neighbours("unheard-of") == []


def test_learning_is_deterministic_for_a_seed():
    first = embeddings.learn(_corpus(), vocabulary=50, dim=4, window=2, smoothing=0.75, seed=3)
    second = embeddings.learn(_corpus(), vocabulary=50, dim=4, window=2, smoothing=0.75, seed=3)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])


def test_a_corpus_with_fewer_words_than_dimensions_is_refused():
    with pytest.raises(UserError, match="fewer than embeddings.dim = 8"):
        embeddings.learn(["a b c", "b c d"], vocabulary=100, dim=8, window=2, smoothing=0.75,
                         seed=0)


def test_initial_matrix_places_scaled_vectors_and_leaves_unknown_words_random():
    table = embeddings.WordVectors(["good", "bad"], np.eye(2, dtype="float32"), {})
    vocabulary = ["", "[UNK]", "bad", "meh", "good"]
    matrix, coverage = table.initial_matrix(vocabulary, norm=10.0, seed=0)
    assert matrix.shape == (5, 2)
    np.testing.assert_array_equal(matrix[2], [0.0, 10.0])
    np.testing.assert_array_equal(matrix[4], [10.0, 0.0])
    assert np.abs(matrix[[0, 1, 3]]).max() <= 0.05          # padding, OOV, unknown word: random
    assert coverage == pytest.approx(2 / 3)


def test_saved_vectors_load_back_and_missing_or_absent_ones_are_clear_errors(tmp_path):
    table = embeddings.WordVectors(["a", "b", "c"], np.ones((3, 2), "float32"), {"corpus": "imdb"})
    table.save(tmp_path)
    loaded = embeddings.load(tmp_path)
    assert loaded.words == ["a", "b", "c"] and loaded.dim == 2 and loaded.meta["corpus"] == "imdb"

    with pytest.raises(UserError, match="run `dvc repro embed` first"):
        embeddings.load(tmp_path / "nowhere")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "meta.json").write_text('{"corpus": "none"}')
    with pytest.raises(UserError, match="embeddings.corpus is 'none'"):
        embeddings.load(tmp_path / "none")
    (tmp_path / embeddings.WORDS_FILE).write_text("a\nb\n")
    with pytest.raises(UserError, match="2 words but vectors of shape"):
        embeddings.load(tmp_path)


def test_a_model_asks_for_vectors_of_its_own_dimension(tmp_path):
    from fixtures import neural_params

    embeddings.WordVectors(["a", "b", "c"], np.ones((3, 2), "float32"), {}).save(tmp_path)
    assert embeddings.for_model(neural_params(embedding_init="random"), "x", tmp_path) is None
    assert embeddings.for_model(
        neural_params(embedding_init="pretrained", embedding_dim=2), "x", tmp_path).dim == 2
    with pytest.raises(ParamsError, match=r"^params.yaml: train.sentiment.gru.embedding_dim = 8 "
                                          r"but the pretrained vectors have 2 dimensions"):
        embeddings.for_model(neural_params(embedding_init="pretrained", embedding_dim=8),
                             "train.sentiment.gru", tmp_path)


def test_a_network_starts_from_the_pretrained_vectors_and_knows_their_words(tmp_path):
    from fixtures import neural_params

    from textrnn.catalog import get_kind
    from textrnn.config import VectorizerParams

    texts = ["good film", "bad film", "good plot", "bad plot"]
    labels = ["positive", "negative", "positive", "negative"]
    # "superb" never occurs in train: it still gets an id, and starts from its vector
    table = embeddings.WordVectors(["good", "bad", "film", "superb"],
                                   np.eye(4, 8, dtype="float32"), {})
    params = neural_params(embedding_init="pretrained", embedding_dim=8, pretrained_norm=3.0,
                           learning_rate=1e-9, epochs=1)
    model = get_kind("sentiment", "gru").build(params, vectorizer=VectorizerParams(max_tokens=50,
                                                                          max_length=4),
                                      embeddings=table)
    model.fit(texts, labels, texts, labels, seed=0, work_dir=tmp_path, verbose=0)
    vocabulary = model.model.get_layer("vectorizer").get_vocabulary()
    assert set(vocabulary[2:-1]) == {"plot", "good", "film", "bad"}   # train's words first
    assert vocabulary[-1] == "superb"
    assert model.embedding_coverage == pytest.approx(4 / 5)   # all but "plot"
    weights = model.model.get_layer("gru_network").get_layer("embedding").get_weights()[0]
    for word, row in (("good", 0), ("superb", 3)):
        np.testing.assert_allclose(weights[vocabulary.index(word)], 3.0 * np.eye(4, 8)[row],
                                   atol=1e-4)

    without = get_kind("sentiment", "gru").build(
        params.model_copy(update={"vocabulary_from_vectors": False}),
        vectorizer=VectorizerParams(max_tokens=50, max_length=4), embeddings=table)
    without.fit(texts, labels, texts, labels, seed=0, work_dir=tmp_path / "b", verbose=0)
    assert "superb" not in without.model.get_layer("vectorizer").get_vocabulary()
