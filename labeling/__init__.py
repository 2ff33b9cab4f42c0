"""Labeling: the Label Studio server, the project from the taxonomy, redacted import,
pre-annotation, active learning, export to the training data set, and the feedback loop.

Imports data/ and (for predictions) training.inference.predict only; see docs/labeling.md.
"""
