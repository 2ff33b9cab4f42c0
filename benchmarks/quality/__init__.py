"""Benchmarks on public labelled data sets: the same training and evaluation code as the product,
with heads defined by a benchmark spec (configs/benchmarks/*.yaml) instead of the taxonomy."""
