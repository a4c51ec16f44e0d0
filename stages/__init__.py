"""DVC stages: one module per stage; each reads its params, calls the library, writes its outs."""
