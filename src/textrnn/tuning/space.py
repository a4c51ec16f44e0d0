"""A search space as written in params.yaml, checked before any trial runs.

Each entry names a hyperparameter of the model (a key of its ``train`` params) and says where
to look:

- a list is a categorical choice: ``optimizer: [adam, rmsprop]``, ``units: [64, 128]``
  (so a grid pasted from a GridSearchCV ``param_grid`` runs as it is);
- a mapping is a range: ``{low: 0.0001, high: 0.01, log: true}`` (float),
  ``{low: 32, high: 256, step: 32}`` (int). ``log`` samples uniformly in log space and needs
  ``low > 0``; ``step`` quantises. A range over a float hyperparameter is sampled as float even
  when its bounds are written as integers (``dropout: {low: 0, high: 0.5}``).

No optuna import here: config.py parses spaces with :func:`parse_dimension` at load time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Categorical:
    choices: tuple[Scalar, ...]

    def describe(self) -> Any:
        return list(self.choices)


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False  # int bounds (and step): sampled with suggest_int

    def describe(self) -> Any:
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high


Dimension = Categorical | Range


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_dimension(raw: Any) -> Dimension:
    """One params.yaml entry -> a :class:`Categorical` or a :class:`Range` (ValueError if bad)."""
    if isinstance(raw, Categorical | Range):
        return raw
    if isinstance(raw, list | tuple):
        if not raw:
            raise ValueError("an empty list of choices: give at least one value")
        for value in raw:
            if not isinstance(value, str | int | float | bool):
                raise ValueError(
                    f"choice {value!r} is a {type(value).__name__}; choices must be strings, "
                    "numbers or booleans"
                )
        if len(set(map(repr, raw))) != len(raw):
            raise ValueError(f"choices {list(raw)!r} repeat a value")
        return Categorical(tuple(raw))
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - {"low", "high", "log", "step"})
        if unknown:
            raise ValueError(f"unknown range key {unknown[0]!r} (allowed: low, high, log, step)")
        if "low" not in raw or "high" not in raw:
            raise ValueError("a range needs both low and high, e.g. {low: 0.0001, high: 0.01}")
        low, high = raw["low"], raw["high"]
        log, step = raw.get("log", False), raw.get("step")
        if not (_is_number(low) and _is_number(high)):
            raise ValueError(f"low and high must be numbers, got {low!r} and {high!r}")
        if not isinstance(log, bool):
            raise ValueError(f"log must be true or false, got {log!r}")
        if not all(math.isfinite(v) for v in (low, high)) or low >= high:
            raise ValueError(f"low must be below high, got low={low!r}, high={high!r}")
        if log and low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={low!r}")
        if step is not None:
            if not _is_number(step) or step <= 0:
                raise ValueError(f"step must be a positive number, got {step!r}")
            if log:
                raise ValueError("log and step cannot be combined")
        integer = _is_int(low) and _is_int(high) and (step is None or _is_int(step))
        return Range(low=low, high=high, log=log, step=step, integer=integer)
    raise ValueError(
        f"{raw!r} is neither a list of choices nor a range; write [a, b, ...] or "
        "{low: .., high: .., log: true|false}"
    )


def check_space(
    space: Mapping[str, Dimension], base: Any, *, key: str, fixed: Mapping[str, Any] | None = None
) -> dict[str, Dimension]:
    """Check ``space`` against ``base`` (the model's pydantic train params) and return it typed.

    Every name must be a hyperparameter of the model, every choice and both bounds of every range
    valid values for it (the schema's own rules: ranges, literal names). A range over a float
    field becomes a float range; a float range over an int field is an error. ``key`` is the
    params.yaml path of the space, used in messages. Raises ValueError naming ``key.<name>``.
    """
    fields = type(base).model_fields
    checked: dict[str, Dimension] = {}
    for name, dim in space.items():
        where = f"{key}.{name}"
        if name not in fields:
            raise ValueError(
                f"{where}: {name!r} is not a hyperparameter of this model "
                f"(known: {', '.join(sorted(fields))})"
            )
        current = getattr(base, name)
        if isinstance(dim, Range):
            if isinstance(current, bool) or not _is_number(current):
                raise ValueError(f"{where}: {name} takes {type(current).__name__} values, "
                                 "not a range")
            if _is_int(current) and not dim.integer:
                raise ValueError(f"{where}: {name} is an integer; give integer low, high and step")
            if isinstance(current, float):
                dim = Range(low=float(dim.low), high=float(dim.high), log=dim.log,
                            step=None if dim.step is None else float(dim.step), integer=False)
            values = [dim.low, dim.high]
        else:
            values = list(dim.choices)
            if isinstance(current, float):  # strict schema: 1 is not a float; 1.0 is meant
                dim = Categorical(tuple(float(v) if _is_int(v) else v for v in dim.choices))
                values = list(dim.choices)
        for value in values:
            validate_values(base, {name: value}, where=where)
        checked[name] = dim
    if fixed:
        validate_values(base, dict(fixed), where=key.rsplit(".", 1)[0] + ".fixed")
    return checked


def validate_values(base: Any, values: Mapping[str, Any], *, where: str) -> Any:
    """``base`` with ``values`` put in, validated by its schema; ValueError naming ``where``."""
    from pydantic import ValidationError

    unknown = sorted(set(values) - set(type(base).model_fields))
    if unknown:
        raise ValueError(f"{where}: {unknown[0]!r} is not a hyperparameter of this model")
    try:
        return type(base).model_validate({**base.model_dump(), **values})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))} = {err['input']!r}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{where}: {problems}") from None


def grid(space: Mapping[str, Dimension]) -> dict[str, list[Scalar]]:
    """The space as a grid (every entry a list of choices) for Optuna's GridSampler."""
    ranges = [name for name, dim in space.items() if isinstance(dim, Range)]
    if ranges:
        raise ValueError(
            f"sampler grid needs a list of choices for every entry; {', '.join(ranges)} "
            "is a range (use sampler random or tpe, or list the values)"
        )
    return {name: list(dim.choices) for name, dim in space.items()}  # type: ignore[union-attr]


def grid_size(space: Mapping[str, Dimension]) -> int:
    return math.prod(len(choices) for choices in grid(space).values())


def contains(space: Mapping[str, Dimension], values: Mapping[str, Any]) -> bool:
    """Whether ``values`` (one per entry) is a point of the space."""
    for name, dim in space.items():
        value = values.get(name)
        if isinstance(dim, Categorical):
            if not any(type(value) is type(c) and value == c for c in dim.choices):
                return False
        elif not dim.contains(value):
            return False
    return True


def suggest(trial: Any, space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Ask an Optuna ``trial`` for one value per entry of ``space``."""
    params: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Categorical):
            params[name] = trial.suggest_categorical(name, list(dim.choices))
        elif dim.integer:
            params[name] = trial.suggest_int(
                name, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log
            )
        else:
            params[name] = trial.suggest_float(
                name, float(dim.low), float(dim.high), step=dim.step, log=dim.log
            )
    return params


def describe(space: Mapping[str, Dimension]) -> dict[str, Any]:
    """The space back in params.yaml form (for hashing and for logging)."""
    return {name: dim.describe() for name, dim in space.items()}
