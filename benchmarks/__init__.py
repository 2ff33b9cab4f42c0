"""Benchmarks: tooling that measures the product, never imported by it.

Two kinds, kept apart because they answer different questions:
- `benchmarks.quality`: how well a model labels posts, on public labelled data sets (SENTIPOLC,
  complaints, BANKING77...), through the same training and evaluation code as the product
  (`smista benchmark run`).
- `benchmarks.speed`: how fast and how lean the served endpoint is, against the same model run one
  post at a time and against the machine's compute ceiling (`smista serve bench`), and whether it
  holds up over a long run (`smista serve soak`).
Results and the commands that produced them: docs/BENCHMARKS.md.
"""
