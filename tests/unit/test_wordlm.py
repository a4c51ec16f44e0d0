"""The word-level language model (textrnn.wordlm) and its stage: the classifier's ids, exact
perplexity, tied output, training, resuming, saved files, stage outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from fixtures import write_imdb_tar

from textrnn import wordlm
from textrnn.errors import DataError, UserError

TINY = dict(embedding_dim=6, units=8, layers=1, dropout=0.2, sampled=5, sequence_length=8,
            batch_size=8, learning_rate=0.02, schedule="constant", clipnorm=1.0,
            train_tokens=2000, eval_every=10, vocabulary=100, val_reviews=1)
SENTENCE = "the cat sat on the mat and the dog ate a bone near the old red barn"


def tiny_params(**changes):
    return types.SimpleNamespace(**{**TINY, **changes})


def tiny_model(vocab_size=13, seed=0, **changes):
    keras.utils.set_random_seed(seed)
    return wordlm.build_lm(vocab_size, tiny_params(**changes))


def python(code: str, *args: str, env: dict | None = None, cwd=ROOT, check: bool = True):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if check and proc.returncode != 0:
        pytest.fail(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# ----------------------------------------------------------------------------- vocabulary


def test_vocabulary_is_pad_unk_corpus_words_then_the_tasks_other_words():
    corpus = ["b a a c", "C c A!", "z"]                      # a: 3, c: 3, b: 1, z: 1
    task = ["B d d e", "d a"]                                # new: d: 3, e: 1 (b already in)
    assert wordlm.build_vocabulary(corpus, task, 3) == ["", "[UNK]", "a", "c", "b", "d", "e"]
    assert wordlm.build_vocabulary(corpus, task, 2) == ["", "[UNK]", "a", "c", "d", "b", "e"]


def test_encode_gives_the_ids_of_a_vectorizer_built_on_the_vocabulary():
    texts = ["Don't STOP!  It's <b>great</b>...", "so-so, 10/10; e-mail me", "ÉTÉ Été été",
             "the great film", "It's a film, a GREAT one."]
    vocab = wordlm.build_vocabulary(texts[:3], texts[3:4], 100)
    vectorizer = keras.layers.TextVectorization(   # make_vectorizer's settings, given words
        max_tokens=None, output_mode="int", output_sequence_length=40, vocabulary=vocab[2:])
    assert vectorizer.get_vocabulary() == vocab
    for text in [*texts, "never seen words: zyzzyva QUUX"]:
        ids = vectorizer(np.asarray([text], dtype=object)).numpy()[0]
        assert wordlm.encode([text], vocab).tolist() == ids[ids != 0].tolist()
    assert (wordlm.encode(texts[4:], vocab) == wordlm.UNK_ID).sum() == 3     # a, a, one
    stream = wordlm.encode(texts[:2], vocab)
    assert stream.dtype == np.int32
    assert stream.tolist() == [*wordlm.encode(texts[:1], vocab), *wordlm.encode(texts[1:2], vocab)]


# ----------------------------------------------------------------------------- model


def brute_force_perplexity(model, ids, pieces):
    """Each token of each piece scored by running the model afresh on all its piece before it."""
    total, count = 0.0, 0
    for piece in pieces:
        for end in range(1, len(piece)):
            hidden = model(np.asarray([piece[:end]], np.int32), training=False)
            scores = keras.ops.convert_to_numpy(wordlm.logits(model, hidden))[0, -1]
            scores = scores.astype(np.float64)
            total += np.log(np.exp(scores - scores.max()).sum()) + scores.max() - scores[piece[end]]
            count += 1
    assert count == len(ids) - 1
    return float(np.exp(total / count))


def test_exact_perplexity_equals_scoring_every_prefix_afresh():
    model = tiny_model(vocab_size=11, layers=2)
    ids = np.random.default_rng(0).integers(0, 11, 23).astype(np.int32)
    whole = brute_force_perplexity(model, ids, [ids])
    for chunk in (1, 4, 50):
        assert wordlm.exact_perplexity(model, ids, streams=1, chunk_length=chunk) == \
            pytest.approx(whole, rel=1e-5)
    # 3 streams: targets ids[1:] in 3 contiguous pieces of 8, 8, 6, each from its own start
    pieces = [ids[0:9], ids[8:17], ids[16:23]]
    assert wordlm.exact_perplexity(model, ids, streams=3, chunk_length=3) == \
        pytest.approx(brute_force_perplexity(model, ids, pieces), rel=1e-5)


def test_the_output_layer_is_the_embedding_matrix():
    model = tiny_model(vocab_size=9)
    word = 7
    inputs = np.array([[2, 3, 4, 5, 3]], np.int32)                         # no `word` in it
    hidden = model(inputs, training=False)
    before = keras.ops.convert_to_numpy(wordlm.logits(model, hidden))
    assert before.shape == (1, 5, 9) and tuple(hidden.shape) == (1, 5, TINY["embedding_dim"])
    table = model.get_layer("embedding").embeddings
    change = np.zeros((9, TINY["embedding_dim"]), "float32")
    change[word] = 1.5
    table.assign(keras.ops.convert_to_numpy(table) + change)
    hidden_after = model(inputs, training=False)
    np.testing.assert_allclose(hidden_after, hidden)                       # inputs unchanged
    after = keras.ops.convert_to_numpy(wordlm.logits(model, hidden_after))
    assert np.abs(after[..., word] - before[..., word]).min() > 1e-4
    np.testing.assert_allclose(np.delete(after, word, -1), np.delete(before, word, -1))
    names = [layer.name for layer in model.layers]
    assert {"embedding", "lm_lstm_1", "projection"} <= set(names)


@pytest.mark.parametrize(("sampled", "tokens"), [(0, 2000), (5, 6000)])   # full, sampled softmax
def test_training_lowers_validation_perplexity_on_a_repetitive_corpus(tmp_path, sampled, tokens):
    vocab = wordlm.build_vocabulary([SENTENCE], [], 100)
    ids = wordlm.encode([SENTENCE] * 60, vocab)
    model = tiny_model(vocab_size=len(vocab), sampled=sampled)
    start = wordlm.exact_perplexity(model, ids[:200])
    lines = []
    rows = wordlm.train_lm(model, ids[200:], ids[:200],
                           params=tiny_params(sampled=sampled, train_tokens=tokens),
                           seed=0, work_dir=tmp_path / "state", log=lines.append)
    steps = -(-tokens // (8 * 8))
    assert [row["step"] for row in rows] == [*range(10, steps, 10), steps]
    assert rows[-1]["tokens"] == steps * 64 and len(lines) == len(rows)
    assert set(rows[0]) == {"step", "tokens", "train_loss", "val_perplexity", "seconds"}
    assert rows[-1]["val_perplexity"] < start / 2
    assert rows[-1]["val_perplexity"] == pytest.approx(wordlm.exact_perplexity(model, ids[:200]))
    assert f"step {steps}/{steps}" in lines[-1] and "val perplexity" in lines[-1]


def test_a_stream_shorter_than_one_batch_still_trains_and_a_too_short_one_is_refused(tmp_path):
    ids = np.arange(2, 12, dtype=np.int32)                                # 10 tokens
    model = tiny_model(vocab_size=13)
    rows = wordlm.train_lm(model, ids, ids, params=tiny_params(train_tokens=300), seed=1,
                           work_dir=tmp_path / "a", log=lambda line: None)
    assert rows[-1]["step"] == 5
    with pytest.raises(DataError, match="shorter than one window"):
        wordlm.train_lm(model, ids[:8], ids, params=tiny_params(), seed=1,
                        work_dir=tmp_path / "b")


def test_a_linear_schedule_falls_from_the_learning_rate_to_zero_over_the_budget():
    assert wordlm._learning_rate(tiny_params()) == TINY["learning_rate"]           # constant
    schedule = wordlm._learning_rate(tiny_params(schedule="linear", train_tokens=64 * 40))
    rates = [float(schedule(step)) for step in (0, 10, 20, 40, 50)]
    assert rates == pytest.approx([0.02, 0.015, 0.01, 0.0, 0.0])


def test_the_embedding_can_start_from_word_vectors_scaled_to_a_norm():
    from textrnn.sentiment.embeddings import WordVectors

    rng = np.random.default_rng(0)
    unit = rng.normal(size=(3, TINY["embedding_dim"])).astype("float32")
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    vectors = WordVectors(["cat", "dog", "emu"], unit, {})
    model = tiny_model(vocab_size=6)
    vocab = ["", "[UNK]", "dog", "mat", "cat", "owl"]
    assert wordlm.init_embedding(model, vocab, vectors, norm=2.0, seed=0) == 0.5
    table = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
    np.testing.assert_allclose(table[[2, 4]], 2.0 * unit[[1, 0]], rtol=1e-6)
    assert np.abs(table[[3, 5]]).max() <= 0.05                      # no vector: a uniform start
    hidden = model(np.array([[2, 4]], np.int32), training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wordlm.logits(model, hidden))[0, :, 4],
                               keras.ops.convert_to_numpy(hidden)[0] @ table[4]
                               + keras.ops.convert_to_numpy(model.get_layer("tied_output").bias)[4],
                               rtol=1e-5, atol=1e-6)                # the softmax's weights too


def test_the_stage_refuses_word_vectors_of_another_dimension(tmp_path, monkeypatch):
    from stages.pretrain_lm import start_model
    from textrnn.sentiment.embeddings import WordVectors

    (tmp_path / "models/embeddings").mkdir(parents=True)
    WordVectors(["cat"], np.ones((1, 4), "float32") / 2,
                {"corpus": "imdb"}).save(tmp_path / "models/embeddings")
    monkeypatch.chdir(tmp_path)
    params = types.SimpleNamespace(seed=0, pretrain=tiny_params(embedding_init="pretrained",
                                                                pretrained_norm=1.0))
    with pytest.raises(UserError, match=r"pretrain.embedding_dim = 6 but the pretrained "
                                        r"vectors have 4 dimensions"):
        start_model(["", "[UNK]", "cat"], params)


RESUME_WORKER = """
    import os, signal, sys, types
    import numpy as np
    from textrnn import wordlm
    from textrnn.seeding import seed_everything

    work_dir, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seed_everything(3)
    params = types.SimpleNamespace(**{TINY!r})
    ids = np.random.default_rng(0).integers(2, 13, 500).astype(np.int32)
    model = wordlm.build_lm(13, params)
    seen = []

    def log(line):
        print(line, flush=True)
        seen.append(line)
        if len(seen) == kill_at:          # the checkpoint of the line before is written
            os.kill(os.getpid(), signal.SIGKILL)

    rows = wordlm.train_lm(model, ids[50:], ids[:50], params=params, seed=3, work_dir=work_dir,
                           log=log)
    np.savez(out, *model.get_weights(), perplexity=rows[-1]["val_perplexity"])
"""


def test_a_killed_training_resumes_and_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    # the linear schedule too: its place comes from the optimizer's step count in the checkpoint
    worker = RESUME_WORKER.replace("{TINY!r}", repr({**TINY, "train_tokens": 64 * 40,
                                                      "schedule": "linear"}))
    python(worker, str(tmp_path / "whole"), str(tmp_path / "whole.npz"), "0")
    killed = python(worker, str(tmp_path / "cut"), str(tmp_path / "cut.npz"), "3", check=False)
    assert killed.returncode == -9 and killed.stdout.count("step ") == 3
    resumed = python(worker, str(tmp_path / "cut"), str(tmp_path / "cut.npz"), "0")
    assert "resuming at step 21/40" in resumed.stdout
    assert "step 10/40" not in resumed.stdout and "step 40/40" in resumed.stdout
    whole, cut = np.load(tmp_path / "whole.npz"), np.load(tmp_path / "cut.npz")
    assert len(whole.files) == len(cut.files) > 5
    for name in whole.files:
        np.testing.assert_allclose(cut[name], whole[name], atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------- saved model


def test_the_saved_model_reloads_with_only_textrnn_layers_imported(tmp_path):
    vocab = wordlm.build_vocabulary([SENTENCE], ["zebra crossing"], 100)
    model = tiny_model(vocab_size=len(vocab), layers=2)
    model.get_layer(wordlm.OUTPUT_LAYER).bias.assign(np.arange(len(vocab), dtype="float32"))
    wordlm.save(tmp_path / "lm", model, vocab, {"val_perplexity": 3.5})
    ids = wordlm.encode(["the zebra sat on a mat"], vocab)[None, :]
    expected = keras.ops.convert_to_numpy(wordlm.logits(model, model(ids)))
    np.save(tmp_path / "ids.npy", ids)
    python("""
        import sys
        import keras, numpy as np
        import textrnn.layers
        model = keras.saving.load_model(sys.argv[1] + "/lm/lm.keras", safe_mode=True)
        hidden = model(np.load(sys.argv[1] + "/ids.npy"))
        layer = model.get_layer("tied_output")
        table = model.get_layer("embedding").embeddings
        logits = keras.ops.convert_to_numpy(layer.logits(hidden, table))
        np.save(sys.argv[1] + "/logits.npy", logits)
        assert "textrnn.wordlm" not in sys.modules
    """, str(tmp_path))
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-5, atol=1e-5)
    loaded, loaded_vocab, meta = wordlm.load(tmp_path / "lm")
    assert loaded_vocab == vocab and meta == {"val_perplexity": 3.5}
    assert (tmp_path / "lm/vocab.txt").read_text(encoding="utf-8").startswith("\n[UNK]\nthe\n")
    np.testing.assert_allclose(wordlm.logits(loaded, loaded(ids)), expected, rtol=1e-5, atol=1e-5)


def test_loading_a_missing_model_names_the_stage(tmp_path):
    with pytest.raises(UserError, match=r"lm is missing: run `dvc repro pretrain_lm`"):
        wordlm.load(tmp_path / "lm")
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm/meta.json").write_text("{}")
    with pytest.raises(UserError, match=r"lm.keras is missing: run `dvc repro pretrain_lm`"):
        wordlm.load(tmp_path / "lm")
    (tmp_path / "lm/meta.json").write_text('{"corpus": "none"}')
    with pytest.raises(UserError, match=r"no language model \(pretrain.corpus: none\)"):
        wordlm.load(tmp_path / "lm")


# ----------------------------------------------------------------------------- the stage


STAGE = """
    from textrnn.sentiment import data
    data.IMDB_PER_CLASS_PER_SPLIT, data.IMDB_UNLABELLED = 3, 6
    from stages.pretrain_lm import main
    from textrnn.stage import run
    run(main)
"""


def _stage_repo(tmp_path, **pretrain) -> dict:
    """A folder with params.yaml (tiny pretrain), the sentiment splits and a mirror."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["pretrain"].update({**{k: v for k, v in TINY.items()}, "val_reviews": 2,
                               "train_tokens": 300, "eval_every": 2,
                               "embedding_init": "random", **pretrain})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    splits = tmp_path / "data/split/sentiment"
    splits.mkdir(parents=True)
    texts = {"train": ["A fine film indeed", "zebra"], "val": ["a FINE film. Really & truly.  "
                                                               "test neg 1"],
             "test": ["Nothing like any review"]}
    for name, rows in texts.items():
        pd.DataFrame({"text": rows, "label": "positive"}).to_parquet(splits / f"{name}.parquet")
    write_imdb_tar(tmp_path / "mirror/aclImdb_v1.tar.gz", per_class=3, unlabelled=6)
    return {"TEXTRNN_DATA_MIRROR": str(tmp_path / "mirror")}


def test_the_stage_writes_its_outputs_and_leaves_out_a_held_out_text(tmp_path):
    (tmp_path / "mirror").mkdir()
    env = _stage_repo(tmp_path, corpus="imdb")
    out = python(STAGE, env=env, cwd=tmp_path).stdout
    assert "17 IMDb reviews (1 left out" in out and "15 train" in out and "2 val" in out
    metrics = json.loads((tmp_path / "metrics/pretrain_lm.json").read_text())
    assert metrics["corpus_reviews"] == 17 and metrics["left_out"] == 1
    assert metrics["steps"] == 5 and metrics["train_tokens"] == 5 * 64
    assert metrics["val_perplexity"] > 1
    history = pd.read_csv(tmp_path / "plots/lm/history.csv")
    assert history["step"].tolist() == [2, 4, 5]
    model, vocab, meta = wordlm.load(tmp_path / "models/lm")
    assert "zebra" in vocab and vocab.index("zebra") > vocab.index("fine")   # task word last
    assert meta["val_perplexity"] == metrics["val_perplexity"]
    assert not (tmp_path / "models/lm_state/state.npz").exists()   # deleted once trained


def test_the_stage_starts_the_embedding_from_the_embed_stages_vectors_when_asked(tmp_path):
    from textrnn.sentiment.embeddings import WordVectors

    (tmp_path / "mirror").mkdir()
    env = _stage_repo(tmp_path, corpus="imdb", embedding_init="pretrained")
    dim = TINY["embedding_dim"]
    (tmp_path / "models/embeddings").mkdir(parents=True)
    WordVectors(["fine", "film", "zebra"], np.eye(3, dim, dtype="float32"),
                {"corpus": "imdb"}).save(tmp_path / "models/embeddings")
    out = python(STAGE, env=env, cwd=tmp_path).stdout
    assert "the embedding starts from the embed stage's word vectors (" in out
    covered = float(out.split("word vectors (")[1].split("%")[0]) / 100
    assert covered > 0
    _, vocab, meta = wordlm.load(tmp_path / "models/lm")
    assert covered == pytest.approx(3 / (len(vocab) - 2), abs=1e-3)
    assert meta["params"]["embedding_init"] == "pretrained"


def test_the_stage_without_word_vectors_says_which_key_asks_for_them(tmp_path):
    (tmp_path / "mirror").mkdir()
    env = _stage_repo(tmp_path, corpus="imdb", embedding_init="pretrained")
    proc = python(STAGE, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("pretrain.embedding_init is 'pretrained': models/embeddings/meta.json is missing: "
            "run `dvc repro embed` first (or set pretrain.embedding_init: random)") in proc.stderr
    assert not (tmp_path / "models/lm").exists()


def test_the_stage_with_corpus_none_writes_no_model(tmp_path):
    (tmp_path / "mirror").mkdir()
    env = _stage_repo(tmp_path, corpus="none")
    assert "no language model" in python(STAGE, env=env, cwd=tmp_path).stdout
    assert json.loads((tmp_path / "models/lm/meta.json").read_text()) == {"corpus": "none"}
    assert json.loads((tmp_path / "metrics/pretrain_lm.json").read_text()) == {"corpus": "none"}
