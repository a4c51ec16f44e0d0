"""Seeded, stratified splits of a labelled table in which duplicates never straddle two splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from textrnn.errors import DataError
from textrnn.sentiment.data import normalise_for_dedup


def _grouped_split(frame: pd.DataFrame, fraction: float, seed: int,
                   stratify_by: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split whole groups of equal texts: (rest, carved) with ``fraction`` of groups carved.

    Each group is stratified by the ``stratify_by`` values of its first row.
    """
    keys = frame["text"].map(normalise_for_dedup)
    first = frame.assign(_key=keys).drop_duplicates("_key")
    strata = first[stratify_by].astype(str).agg("/".join, axis=1)
    too_small = strata.value_counts()
    too_small = too_small[too_small < 2]
    if len(too_small):
        raise DataError(
            f"cannot stratify the split: {', '.join(too_small.index)} has fewer than 2 examples"
        )
    try:
        rest_keys, carved_keys = train_test_split(
            first["_key"].to_numpy(), test_size=fraction, random_state=seed,
            stratify=strata.to_numpy()
        )
    except ValueError as exc:
        raise DataError(f"cannot split: {exc}") from None
    carved = keys.isin(set(carved_keys))
    return frame[~carved.to_numpy()], frame[carved.to_numpy()]


def split_table(frame: pd.DataFrame, *, train: float, val: float, test: float,
                upstream_val_fraction: float, has_upstream_test: bool, seed: int,
                ) -> tuple[dict[str, pd.DataFrame], int]:
    """Return ({'train', 'val', 'test'} tables, rows dropped from train because test holds them).

    With ``has_upstream_test`` the rows whose origin is 'test' are the test split and validation is
    carved from the rest; otherwise test and validation are carved by the fractions.
    """
    stratify_by = ["label", "origin"]
    if has_upstream_test:
        is_test = (frame["origin"] == "test").to_numpy()
        test_part, pool = frame[is_test], frame[~is_test]
        # Upstream train and test share some texts: drop them from our side, never from test.
        test_keys = set(test_part["text"].map(normalise_for_dedup))
        overlap = pool["text"].map(normalise_for_dedup).isin(test_keys).to_numpy()
        pool = pool[~overlap]
        if (pool["origin"] == "val").any():  # a user's split column that names val rows too
            is_val = (pool["origin"] == "val").to_numpy()
            train_part, val_part = pool[~is_val], pool[is_val]
        else:
            train_part, val_part = _grouped_split(pool, upstream_val_fraction, seed, ["label"])
        dropped = int(overlap.sum())
    else:
        rest, test_part = _grouped_split(frame, test, seed, stratify_by)
        train_part, val_part = _grouped_split(rest, val / (train + val), seed, stratify_by)
        dropped = 0
    splits = {"train": train_part, "val": val_part, "test": test_part}
    # Shuffle rows inside each split (seeded) so that no order of the source survives.
    rng = np.random.default_rng(seed)
    return {
        name: part.iloc[rng.permutation(len(part))].reset_index(drop=True)
        for name, part in splits.items()
    }, dropped
