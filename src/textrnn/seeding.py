"""One seed from params.yaml seeds Python, NumPy and TensorFlow, with deterministic ops."""

from __future__ import annotations


def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy and TensorFlow and turn on TensorFlow's op determinism.

    Two runs with the same seed, data and params on the same kind of CPU give the same weights.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)  # seeds random, numpy and tensorflow
    tf.config.experimental.enable_op_determinism()
