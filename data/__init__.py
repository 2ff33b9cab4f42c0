"""Data: taxonomy loader, post schema, JSONL I/O, the seed data set and the split builder."""
