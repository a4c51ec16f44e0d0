"""Datasets: where each comes from (sources), how it is parsed and validated, how it is split."""
