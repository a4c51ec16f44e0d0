"""Decoders for a trained character LM: greedy, beam, stochastic beam and temperature sampling
(with optional top-k and nucleus / top-p truncation).

Each decoder primes the network on the prompt in one call
(:class:`textrnn.charlm.train.StateFunction`, the trained model with explicit states), then
steps the trained layers' recurrent cells ONE character per compiled call with the state
carried: one small call per new character instead of a ``model.predict`` over the whole
window. Every random choice comes from a NumPy generator seeded by the caller, so the same
seed gives the same text. The unknown-character token is never generated; unknown characters
in a prompt are read as that token.
"""

from __future__ import annotations

import argparse
import logging
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import keras
import numpy as np
import tensorflow as tf

from textrnn.charlm import train
from textrnn.charlm.model import cell_step
from textrnn.config import CharlmStrategy
from textrnn.errors import UserError

log = logging.getLogger(__name__)

STRATEGIES = get_args(CharlmStrategy)      # greedy, beam, stochastic_beam, sample


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and for very negative x."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > -0.6931, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def check_top_p(top_p: float) -> None:
    """0 < top_p <= 1 (1 = off), else a one-line UserError."""
    if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1:
        raise UserError(f"top_p must be a number in (0, 1] (1 = off), got {top_p!r}")


def nucleus(scores: np.ndarray, top_p: float) -> np.ndarray:
    """``scores`` (log-probabilities, -inf for excluded characters) with every character outside
    the nucleus set to -inf: the smallest set of most likely characters whose probability,
    renormalised over the characters still allowed, reaches ``top_p``. The most likely character
    is always kept (ties: the lowest index first, as ``np.argmax``)."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    probs = np.exp(ranked - ranked[0])
    cumulative = np.cumsum(probs / probs.sum())
    keep = min(int(np.searchsorted(cumulative, top_p, side="left")) + 1, len(scores))
    out = np.full_like(scores, -np.inf)
    out[order[:keep]] = ranked[:keep]
    return out


class Generator:
    """Text continuations of a prompt from a trained charlm ``model`` and its ``vocab``."""

    def __init__(self, model: keras.Model, vocab: Sequence[str]):
        self.vocab = list(vocab)
        self.function = train.StateFunction(model)
        if self.function.vocab_size != len(self.vocab):
            raise ValueError(f"the model predicts {self.function.vocab_size} characters but the "
                             f"vocabulary holds {len(self.vocab)}")
        # Adding this to log-probabilities removes the unknown token from every decoder.
        self._forbid = np.zeros(len(self.vocab), np.float32)
        self._forbid[0] = -np.inf
        self._cell_step = cell_step(model)
        states = [tf.TensorSpec((None, size), tf.float32) for size in self.function.state_sizes]
        scalar = tf.TensorSpec((), tf.float32)
        self._prime_fn = tf.function(self._prime_log_probs, input_signature=[
            tf.TensorSpec((None, None), tf.int32), states, scalar])
        self._step_fn = tf.function(self._step_log_probs, input_signature=[
            tf.TensorSpec((None,), tf.int32), states, scalar])

    def _log_probs(self, logits: tf.Tensor, temperature: tf.Tensor) -> tf.Tensor:
        return tf.nn.log_softmax(logits / temperature + self._forbid, axis=-1)  # (batch, vocab)

    def _prime_log_probs(self, ids: tf.Tensor, states: list[tf.Tensor],
                         temperature: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """A whole prompt ``ids`` (batch, time) in one call: next-character log-probs, states."""
        outputs = self.function.network([ids, *states], training=False)
        return self._log_probs(outputs[0][:, -1, :], temperature), list(outputs[1:])

    def _step_log_probs(self, ids: tf.Tensor, states: list[tf.Tensor],
                        temperature: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """One character per row, ``ids`` (batch,), through the recurrent cells."""
        logits, states = self._cell_step(ids, states)
        return self._log_probs(logits, temperature), states

    def step(self, ids: np.ndarray, states: Sequence[tf.Tensor],
             temperature: float = 1.0) -> tuple[np.ndarray, list[tf.Tensor]]:
        """Feed one character per row, ``ids`` (batch,); float64 log-probs (batch, vocab) of the
        next character, and the new states."""
        log_probs, states = self._step_fn(tf.constant(ids, tf.int32), list(states),
                                          tf.constant(temperature, tf.float32))
        return log_probs.numpy().astype(np.float64), states

    # ------------------------------------------------------------------------- prompts

    def encode_prompt(self, prompt: str) -> np.ndarray:
        """Prompt -> ids; unknown characters become the unknown token (with a warning)."""
        if not prompt:
            raise UserError("the prompt is empty: give at least one character to continue")
        ids = train.encode(prompt, self.vocab)
        if not ids.any():
            raise UserError(f"no character of the prompt {prompt[:40]!r} occurs in the training "
                            "text, so the model has nothing to continue; use characters of the "
                            "book")
        unknown = sorted({char for char, i in zip(prompt, ids, strict=True) if i == 0})
        if unknown:
            log.warning("prompt characters unseen in training, read as unknown: %s",
                        " ".join(repr(char) for char in unknown))
        return ids

    def _prime(self, prompt: str, temperature: float = 1.0) -> tuple[np.ndarray, list]:
        ids = self.encode_prompt(prompt)
        log_probs, states = self._prime_fn(tf.constant(ids[None, :], tf.int32),
                                           self.function.zero_states(1),
                                           tf.constant(temperature, tf.float32))
        return log_probs.numpy().astype(np.float64), states

    @staticmethod
    def _check(length: int, temperature: float = 1.0) -> None:
        if length < 0:
            raise UserError(f"length must be >= 0, got {length}")
        if not temperature > 0:
            raise UserError(f"temperature must be > 0, got {temperature}")

    def _check_width(self, width: int) -> None:
        if not 1 <= width <= len(self.vocab) - 1:
            raise UserError(f"beam width must be between 1 and {len(self.vocab) - 1} (the number "
                            f"of characters the model knows), got {width}")

    # ------------------------------------------------------------------------- decoders

    def greedy(self, prompt: str, length: int) -> str:
        """The most likely character at every step."""
        self._check(length)
        log_probs, states = self._prime(prompt)
        out: list[int] = []
        for position in range(length):
            char = int(np.argmax(log_probs[0]))
            out.append(char)
            if position + 1 < length:
                log_probs, states = self.step(np.array([char]), states)
        return train.decode(out, self.vocab)

    def sample(self, prompt: str, length: int, *, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, seed: int | None = None) -> str:
        """Draw each character from softmax(logits / temperature), among the ``top_k`` most
        likely when ``top_k`` > 0, then among the nucleus of probability ``top_p`` when
        ``top_p`` < 1 (the smallest set of most likely characters whose renormalised probability
        reaches it). Same seed, same text; ``top_p`` = 1 draws exactly as without it."""
        self._check(length, temperature)
        if top_k < 0:
            raise UserError(f"top_k must be >= 0 (0 = no limit), got {top_k}")
        check_top_p(top_p)
        rng = np.random.default_rng(seed)
        log_probs, states = self._prime(prompt, temperature)
        out: list[int] = []
        for position in range(length):
            scores = log_probs[0]
            if 0 < top_k < len(scores):
                cutoff = np.partition(scores, -top_k)[-top_k]
                scores = np.where(scores >= cutoff, scores, -np.inf)
            if top_p < 1:
                scores = nucleus(scores, top_p)
            char = int(np.argmax(scores + rng.gumbel(size=scores.shape)))   # Gumbel-max draw
            out.append(char)
            if position + 1 < length:
                log_probs, states = self.step(np.array([char]), states, temperature)
        return train.decode(out, self.vocab)

    def beam(self, prompt: str, length: int, *, width: int) -> str:
        """Deterministic beam search: the ``width`` most likely continuations are kept at each
        step; returns the most likely one at ``length``. Width 1 is greedy search."""
        self._check(length)
        self._check_width(width)
        return self._beam(prompt, length, width=width, temperature=1.0, rng=None)

    def stochastic_beam(self, prompt: str, length: int, *, width: int,
                        temperature: float = 1.0, seed: int | None = None) -> str:
        """Stochastic beam search (Kool et al., 2019, Gumbel-top-k): ``width`` continuations
        sampled without replacement from the tempered model; returns the most likely of them."""
        self._check(length, temperature)
        self._check_width(width)
        return self._beam(prompt, length, width=width, temperature=temperature,
                          rng=np.random.default_rng(seed))

    def _beam(self, prompt: str, length: int, *, width: int, temperature: float,
              rng: np.random.Generator | None) -> str:
        log_probs, states = self._prime(prompt, temperature)
        vocab_size = len(self.vocab)
        scores = np.zeros(1)          # log-probability of each beam so far
        keys = np.zeros(1)            # what beams are ranked on: scores, or perturbed scores
        beams: list[list[int]] = [[]]
        for position in range(length):
            candidates = scores[:, None] + log_probs                      # (beams, vocab)
            if rng is None:
                child_keys = candidates
            else:
                # Gumbel-perturbed scores, conditioned so that a child's maximum equals its
                # parent's key (the paper's numerically stable form).
                perturbed = candidates + rng.gumbel(size=candidates.shape)
                top = perturbed.max(axis=1, keepdims=True)
                with np.errstate(invalid="ignore", over="ignore"):
                    v = keys[:, None] - perturbed + _log1mexp(perturbed - top)
                    child_keys = keys[:, None] - np.maximum(v, 0) - np.log1p(np.exp(-np.abs(v)))
                child_keys = np.where(np.isneginf(candidates), -np.inf, child_keys)
            flat = child_keys.ravel()
            chosen = np.argsort(-flat, kind="stable")[:width]              # ties: lowest index
            parents, chars = np.divmod(chosen, vocab_size)
            scores, keys = candidates.ravel()[chosen], flat[chosen]
            beams = [beams[p] + [int(c)] for p, c in zip(parents, chars, strict=True)]
            if position + 1 < length:
                index = tf.constant(parents, tf.int32)
                states = [tf.gather(state, index) for state in states]
                log_probs, states = self.step(chars, states, temperature)
        best = int(np.argmax(scores))
        return train.decode(beams[best], self.vocab)

    # ------------------------------------------------------------------------- one entry point

    def generate(self, prompt: str, *, length: int, strategy: str, temperature: float = 1.0,
                 beam_width: int = 5, seed: int | None = None, top_k: int = 0,
                 top_p: float = 1.0) -> str:
        """``length`` new characters after ``prompt`` (the prompt not repeated). ``top_k`` and
        ``top_p`` apply to ``sample`` only."""
        check_top_p(top_p)
        if strategy == "greedy":
            return self.greedy(prompt, length)
        if strategy == "beam":
            return self.beam(prompt, length, width=beam_width)
        if strategy == "stochastic_beam":
            return self.stochastic_beam(prompt, length, width=beam_width,
                                        temperature=temperature, seed=seed)
        if strategy == "sample":
            return self.sample(prompt, length, temperature=temperature, top_k=top_k,
                               top_p=top_p, seed=seed)
        raise UserError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


def generator_from_folder(directory: str | Path) -> Generator:
    """A :class:`Generator` over the saved model in ``models/charlm/<name>/model/``."""
    model, vocab, _ = train.load(directory)
    return Generator(model, vocab)


# ----------------------------------------------------------------------------- command line


def generate_command(args: argparse.Namespace) -> None:
    """`textrnn generate` (arguments in :mod:`textrnn.cli`): print the prompt, then the
    continuation."""
    from textrnn.model_files import read_champion

    name = args.model if args.model is not None else read_champion(args.models_dir,
                                                                    "charlm").model
    generator = generator_from_folder(args.models_dir / "charlm" / name / "model")
    text = generator.generate(args.prompt, length=args.length, strategy=args.strategy,
                              temperature=args.temperature, beam_width=args.beam_width,
                              seed=args.seed, top_k=args.top_k, top_p=args.top_p)
    print(args.prompt + text)
