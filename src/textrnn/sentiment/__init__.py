"""The sentiment task: classify a text's label (e.g. positive / negative) from its words.

:mod:`~textrnn.sentiment.data` parses and cleans the UCI and IMDb archives,
:mod:`~textrnn.sentiment.text` turns texts into token ids, :mod:`~textrnn.sentiment.batching`
groups them into length-bucketed batches, :mod:`~textrnn.sentiment.embeddings` learns the
pretrained word vectors, :mod:`~textrnn.sentiment.models` builds, fits, saves and loads the
models, and :mod:`~textrnn.sentiment.evaluation`, :mod:`~textrnn.sentiment.behaviour` (the
behavioural tests), :mod:`~textrnn.sentiment.plots` and :mod:`~textrnn.sentiment.reports` score
them and write the evaluation report. Importing this package imports none of them (the data
stages must not load TensorFlow).
"""
