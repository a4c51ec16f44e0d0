"""DVC stages: one module per stage; each reads its params, calls the library, writes its outs."""

from textrnn.stage import quiet_tensorflow

quiet_tensorflow()   # TensorFlow's start-up lines: TEXTRNN_TF_LOG=1 shows them
