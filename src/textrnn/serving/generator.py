"""Text generation for the service: the champion charlm model behind :mod:`textrnn.charlm.decoding`.

The decoders step a single-step network whose recurrent state is passed explicitly (no state
is kept between calls), so requests may run side by side on the thread pool.
"""

from __future__ import annotations

from typing import Protocol

from textrnn.errors import UserError
from textrnn.serving.loading import ModelInfo

BEAM_STRATEGIES = ("beam", "stochastic_beam")


class TextGenerator(Protocol):
    """What the service needs from a generator; tests of the HTTP layer inject their own."""

    info: ModelInfo

    def generate(self, prompt: str, *, length: int, strategy: str, temperature: float,
                 beam_width: int, seed: int | None, top_k: int,
                 top_p: float = 1.0) -> str:
        """``length`` new characters continuing ``prompt`` (the prompt not repeated)."""
        ...


class GenerationRejected(ValueError):
    """A well-formed request this model cannot serve (answered 400 with ``code``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CharlmGenerator:
    """:class:`textrnn.charlm.decoding.Generator` with the service's checks in front of it."""

    def __init__(self, info: ModelInfo, generator) -> None:   # generator: decoding.Generator
        self.info = info
        self._generator = generator
        self._known = set(generator.vocab[1:])      # vocab[0] is the unknown-character token

    @classmethod
    def load(cls, info: ModelInfo) -> CharlmGenerator:
        """Load models/charlm/<name>/model/ (Keras in safe mode) and trace every decoder."""
        from textrnn.charlm import decoding

        try:
            inner = decoding.generator_from_folder(info.path)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 (Keras and json raise many kinds: 'unreadable')
            raise UserError(
                f"{info.path}: cannot load the charlm model ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]})"
            ) from None
        missing = {"greedy", "beam", "stochastic_beam", "sample"} - set(decoding.STRATEGIES)
        if missing:
            raise UserError(f"textrnn.charlm.decoding lacks the strategies {sorted(missing)}")
        generator = cls(info, inner)
        generator.warm_up()
        return generator

    def warm_up(self) -> None:
        """Trace the prime and step functions now, not on the first request."""
        prompt = self._generator.vocab[-1]
        width = min(2, len(self._generator.vocab) - 1)
        for strategy in ("greedy", "sample", "beam", "stochastic_beam"):
            self.generate(prompt, length=2, strategy=strategy, temperature=1.0, beam_width=width,
                          seed=0, top_k=0, top_p=1.0)

    def generate(self, prompt: str, *, length: int, strategy: str, temperature: float,
                 beam_width: int, seed: int | None, top_k: int,
                 top_p: float = 1.0) -> str:
        if not any(char in self._known for char in prompt):
            raise GenerationRejected(
                "unknown_characters", f"no character of the prompt occurs in the text the model "
                f"{self.info.name!r} was trained on: it has nothing to continue")
        if strategy in BEAM_STRATEGIES and beam_width > len(self._known):
            raise GenerationRejected(
                "out_of_range", f"beam_width {beam_width} is over the {len(self._known)} "
                "characters the model knows")
        try:
            return self._generator.generate(prompt, length=length, strategy=strategy,
                                            temperature=temperature, beam_width=beam_width,
                                            seed=seed, top_k=top_k, top_p=top_p)
        except UserError as exc:
            raise GenerationRejected("invalid_request", str(exc)) from None


def load_generator(info: ModelInfo) -> TextGenerator:
    return CharlmGenerator.load(info)
