"""The model code of both tasks: :mod:`~textrnn.models.sentiment`, :mod:`~textrnn.models.charlm`
and the :mod:`~textrnn.models.layers` they share. Which kinds exist and which builder makes each
is declared in :mod:`textrnn.catalog` (``kind.build(params, ...)``).

Importing this package registers the custom layers that saved models need.
"""

from textrnn.models import layers as _layers  # noqa: F401 (registers custom layers for loading)
