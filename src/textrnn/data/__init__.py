"""Datasets: where each comes from (sources), the user's own files (custom), how a table is split
(splitting), the data-profile plots (profile). Each task's parsers and cleaners live with the task:
:mod:`textrnn.sentiment.data` and :mod:`textrnn.charlm.data`."""
