"""Decoders: stepping the stateful copy; greedy, beam, stochastic beam, sampling; prompts; CLI."""

from __future__ import annotations

import importlib.util
import json

import keras
import numpy as np
import pytest
import yaml
from conftest import ROOT

from textrnn.catalog import get_kind
from textrnn.charlm import train as charlm_train
from textrnn.charlm.decoding import Generator, nucleus
from textrnn.cli import main as textrnn_main
from textrnn.config import CharlmEvaluateParams, CharlmNeuralParams
from textrnn.errors import UserError

VOCAB = charlm_train.build_vocab("abcdefghij klmnopqrstuvwxyz.,")
PROMPT = "el hidalgo"


def make_model(kind: str = "lstm", *, layers: int = 1, dropout: float = 0.0,
               seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    params = CharlmNeuralParams(embedding_dim=8, units=24, layers=layers, dropout=dropout,
                                optimizer="adam", learning_rate=0.01, clipnorm=1.0, batch_size=8,
                                epochs=1, patience=1, steps_per_epoch=0)
    model = get_kind("charlm", kind).build(params, vocab_size=len(VOCAB))
    # Sharper-than-init output weights: distinct, confident predictions make decoders differ.
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 200, bias])
    return model


@pytest.fixture(scope="module")
def generator() -> Generator:
    return Generator(make_model("lstm", layers=2), VOCAB)


def continuation_log_prob(model: keras.Model, prompt: str, text: str) -> float:
    """log p(text | prompt) by running the full training model over prompt + text."""
    ids = charlm_train.encode(prompt + text, VOCAB)
    logits = keras.ops.convert_to_numpy(model(ids[None, :-1]))[0].astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    start = len(prompt) - 1
    return float(sum(log_probs[start + i, ids[start + i + 1]] for i in range(len(text))))


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_single_step_state_gives_the_same_distribution_as_the_full_model(kind):
    model = make_model(kind, layers=2, dropout=0.3)
    gen = Generator(model, VOCAB)
    ids = charlm_train.encode("en un lugar de la mancha", VOCAB)
    logits = keras.ops.convert_to_numpy(model(ids[None], training=False))[0].astype("float64")
    full = logits - np.log(np.exp(logits[:, 1:]).sum(-1, keepdims=True))  # unknown excluded
    states = gen.function.zero_states(1)
    for position, char in enumerate(ids):                    # one character per call
        log_probs, states = gen.step(np.array([char]), states)
        np.testing.assert_allclose(log_probs[0, 1:], full[position, 1:], atol=1e-4)
        assert log_probs[0, 0] == -np.inf                    # the unknown token is never chosen
    primed, _ = gen._prime("en un lugar de la mancha")       # the whole prompt in one call
    np.testing.assert_allclose(primed[0, 1:], full[-1, 1:], atol=1e-4)


def test_beam_search_of_width_one_is_greedy_search(generator):
    for prompt in (PROMPT, "x", "la mancha."):
        greedy = generator.greedy(prompt, 60)
        assert len(greedy) == 60
        assert generator.beam(prompt, 60, width=1) == greedy


def test_wider_beams_find_continuations_at_least_as_likely_as_greedy(generator):
    trained = make_model("lstm", layers=2)          # the model the generator was built from
    greedy = generator.greedy(PROMPT, 30)
    beam = generator.beam(PROMPT, 30, width=5)
    assert (continuation_log_prob(trained, PROMPT, beam)
            >= continuation_log_prob(trained, PROMPT, greedy) - 1e-6)


def test_sampling_is_reproducible_with_a_seed_and_differs_across_seeds(generator):
    first = generator.sample(PROMPT, 80, temperature=1.0, seed=7)
    assert generator.sample(PROMPT, 80, temperature=1.0, seed=7) == first
    assert generator.sample(PROMPT, 80, temperature=1.0, seed=8) != first
    assert len(first) == 80
    stochastic = generator.stochastic_beam(PROMPT, 40, width=4, temperature=1.0, seed=3)
    assert generator.stochastic_beam(PROMPT, 40, width=4, temperature=1.0, seed=3) == stochastic
    assert generator.stochastic_beam(PROMPT, 40, width=4, temperature=1.0, seed=4) != stochastic


def test_top_one_sampling_and_deterministic_beam_ignore_the_seed(generator):
    greedy = generator.greedy(PROMPT, 40)
    assert generator.sample(PROMPT, 40, temperature=1.0, top_k=1, seed=1) == greedy
    assert generator.sample(PROMPT, 40, temperature=1.0, top_k=1, seed=2) == greedy


def test_low_temperature_samples_repeat_more_than_high_temperature_ones(generator):
    cold = generator.sample(PROMPT, 300, temperature=0.2, seed=0)
    hot = generator.sample(PROMPT, 300, temperature=1.2, seed=0)
    assert len(set(cold)) < len(set(hot))


def test_stochastic_beam_of_width_one_at_a_tiny_temperature_is_greedy(generator):
    # Gumbel noise is negligible next to log-probabilities divided by 0.01.
    assert (generator.stochastic_beam(PROMPT, 30, width=1, temperature=0.01, seed=5)
            == generator.greedy(PROMPT, 30))
    assert (generator.stochastic_beam(PROMPT, 30, width=1, temperature=1.0, seed=5)
            != generator.greedy(PROMPT, 30))


def test_unknown_prompt_characters_are_read_as_the_unknown_token(generator):
    text = generator.greedy("el Hidalgo ¿€", 20)                 # H, ¿ and € are not in VOCAB
    assert len(text) == 20 and set(text) <= set(VOCAB[1:])
    assert generator.sample("ÑÑa", 20, seed=0)                   # mixed prompt: fine


@pytest.mark.parametrize("prompt,message", [("ÑÉ€", "no character of the prompt"),
                                            ("", "empty")])
def test_a_prompt_the_model_cannot_read_is_a_user_error(generator, prompt, message):
    with pytest.raises(UserError, match=message):
        generator.greedy(prompt, 10)


def test_bad_decoder_settings_are_user_errors(generator):
    with pytest.raises(UserError, match="beam width"):
        generator.beam(PROMPT, 10, width=len(VOCAB))
    with pytest.raises(UserError, match="temperature"):
        generator.sample(PROMPT, 10, temperature=0.0)
    with pytest.raises(UserError, match="unknown strategy"):
        generator.generate(PROMPT, length=10, strategy="nucleus")
    assert generator.greedy(PROMPT, 0) == ""


def test_generate_command_continues_the_prompt_with_the_champion(tmp_path, capsys):
    charlm_train.save(tmp_path / "charlm" / "gru" / "model", make_model("gru"), VOCAB,
                      {"model": "gru"})
    (tmp_path / "charlm" / "champion.json").write_text(json.dumps({"model": "gru"}))
    textrnn_main(["generate", PROMPT, "--models-dir", str(tmp_path), "--strategy", "greedy",
                   "--length", "25"])
    expected = Generator(make_model("gru"), VOCAB).greedy(PROMPT, 25)
    assert capsys.readouterr().out == PROMPT + expected + "\n"
    with pytest.raises(SystemExit) as exit_info:
        textrnn_main(["generate", "€€", "--models-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no character of the prompt" in capsys.readouterr().err


def test_generate_reads_the_champion_through_the_one_loader(tmp_path, capsys):
    """No champion, or a broken one: the same one-line errors as the service gives."""
    with pytest.raises(SystemExit) as exit_info:
        textrnn_main(["generate", PROMPT, "--models-dir", str(tmp_path)])
    assert exit_info.value.code != 0
    assert "charlm/champion.json: no champion charlm model" in capsys.readouterr().err
    (tmp_path / "charlm").mkdir()
    (tmp_path / "charlm" / "champion.json").write_text(json.dumps({"model": "../gru"}))
    with pytest.raises(SystemExit):
        textrnn_main(["generate", PROMPT, "--models-dir", str(tmp_path)])
    assert 'champion.json: expected {"model": "<name>", ...}' in capsys.readouterr().err


# ----------------------------------------------------------------------------- nucleus (top-p)


def test_top_p_of_one_samples_exactly_as_top_k_only(generator):
    for top_k in (0, 5):
        plain = generator.sample(PROMPT, 80, temperature=1.0, top_k=top_k, seed=7)
        assert generator.sample(PROMPT, 80, temperature=1.0, top_k=top_k, top_p=1.0,
                                seed=7) == plain
        assert generator.generate(PROMPT, length=80, strategy="sample", top_k=top_k, top_p=1,
                                  seed=7) == plain


def test_a_tiny_top_p_is_greedy_search(generator):
    greedy = generator.greedy(PROMPT, 60)
    for seed in (1, 2):
        assert generator.sample(PROMPT, 60, temperature=1.0, top_p=1e-6, seed=seed) == greedy
        assert generator.sample(PROMPT, 60, temperature=1.2, top_k=4, top_p=1e-6,
                                seed=seed) == greedy


@pytest.fixture
def fixed_distribution(generator, monkeypatch):
    """The generator with the network replaced by one hand-made next-character distribution:
    b 0.4, c 0.3, d 0.15, e 0.1, the remaining 0.05 spread over the other characters."""
    probs = np.zeros(len(VOCAB))
    probs[2:] = 0.05 / (len(VOCAB) - 6)
    for char, p in zip("bcde", (0.4, 0.3, 0.15, 0.1), strict=True):
        probs[VOCAB.index(char)] = p
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs)[None, :]              # the unknown token (index 0): -inf
    monkeypatch.setattr(generator, "_prime", lambda prompt, temperature=1.0: (log_probs, []))
    monkeypatch.setattr(generator, "step",
                        lambda ids, states, temperature=1.0: (log_probs, states))
    return generator


@pytest.mark.parametrize("top_k, top_p, nucleus", [
    (0, 0.8, "bcd"),        # 0.4 + 0.3 < 0.8 <= 0.4 + 0.3 + 0.15
    (0, 0.6, "bc"),
    (0, 0.45, "bc"),
    (3, 0.45, "b"),         # top-k first: b is 0.4 / 0.85 = 0.47 of what top-3 keeps
    (2, 0.99, "bc"),
    (0, 1.0, None),         # off: every character may appear
])
def test_top_p_samples_only_the_nucleus(fixed_distribution, top_k, top_p, nucleus):
    text = fixed_distribution.sample("abc", 3000, top_k=top_k, top_p=top_p, seed=0)
    if nucleus is None:
        assert len(set(text) - set("bcde")) > 5
    else:
        assert set(text) == set(nucleus)


def test_nucleus_keeps_the_smallest_set_reaching_p():
    with np.errstate(divide="ignore"):
        scores = np.log(np.array([0.1, 0.5, 0.0, 0.25, 0.15]))
    kept = np.isfinite(nucleus(scores, 0.8))
    assert kept.tolist() == [False, True, False, True, True]
    assert np.isfinite(nucleus(scores, 1e-9)).tolist() == [False, True, False, False, False]
    np.testing.assert_array_equal(nucleus(scores, 0.8)[kept], scores[kept])   # left as they were


@pytest.mark.parametrize("top_p", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.9"])
def test_an_invalid_top_p_is_one_clear_error(generator, top_p):
    message = r"^top_p must be a number in \(0, 1\] \(1 = off\), got "
    with pytest.raises(UserError, match=message) as error:
        generator.sample(PROMPT, 10, top_p=top_p, seed=0)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="top_p must be"):
        generator.generate(PROMPT, length=10, strategy="sample", top_p=top_p)


def test_generate_command_takes_top_p(tmp_path, capsys):
    charlm_train.save(tmp_path / "charlm" / "gru" / "model", make_model("gru"), VOCAB,
                      {"model": "gru"})
    args = ["generate", PROMPT, "--models-dir", str(tmp_path), "--model", "gru", "--length", "25"]
    textrnn_main([*args, "--strategy", "sample", "--top-p", "1e-6", "--seed", "3"])
    expected = Generator(make_model("gru"), VOCAB).greedy(PROMPT, 25)
    assert capsys.readouterr().out == PROMPT + expected + "\n"
    with pytest.raises(SystemExit) as exit_info:
        textrnn_main([*args, "--top-p", "1.5"])
    assert exit_info.value.code == 2
    assert "top_p must be a number in (0, 1]" in capsys.readouterr().err


def _evaluate_stage():
    spec = importlib.util.spec_from_file_location("evaluate_charlm_stage",
                                                  ROOT / "stages" / "evaluate_charlm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_samples_report_is_unchanged_by_top_p(generator):
    """params.yaml's top_p (1.0) leaves every sample, and the report, as top-k-only sampling
    wrote them: the default run's samples stay byte-identical."""
    stage = _evaluate_stage()
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    settings = CharlmEvaluateParams(**{**defaults["evaluate"]["charlm"], "sample_length": 40,
                                       "prompts": [PROMPT]})
    assert settings.top_p == 1.0
    samples = stage.write_samples(generator, settings, seed=42)
    before = [generator.generate(PROMPT, length=40, strategy=strategy,
                                 temperature=temperature or 1.0,
                                 beam_width=settings.beam_width, seed=42, top_k=settings.top_k)
              for strategy, temperature in stage.sample_plan(settings)]
    assert [sample["text"] for sample in samples] == before
    metrics = {"test_perplexity": 4.0, "test_bits_per_char": 2.0, "val_perplexity": 4.0}
    report = stage.samples_markdown("gru", metrics, samples, settings=settings, champion=True)
    assert "top-p" not in report
    assert "**sample, temperature 0.5**, prompt `el hidalgo`:" in report
    nucleus_report = stage.samples_markdown(
        "gru", metrics, samples, settings=settings.model_copy(update={"top_p": 0.9}),
        champion=True)
    assert "**sample, temperature 0.5, top-p 0.9**, prompt `el hidalgo`:" in nucleus_report
