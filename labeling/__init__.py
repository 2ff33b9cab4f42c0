"""Labeling: Label Studio projects from the taxonomy, import, pre-annotation, export."""
