"""The character-level language model task: predict the next character of a book, then write.

:mod:`~textrnn.charlm.data` strips and splits a Project Gutenberg text,
:mod:`~textrnn.charlm.model` builds the recurrent networks (and their explicit-state twin),
:mod:`~textrnn.charlm.train` holds the vocabulary, training windows, training loop, exact
perplexity and save / load, and :mod:`~textrnn.charlm.decoding` the decoders (greedy, beam,
stochastic beam, sampling) and ``textrnn generate``. Importing this package imports none of them
(the data stages must not load TensorFlow).
"""
