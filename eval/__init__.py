"""Evaluation: datasets, systems under test, metrics and reports (issue #7; not implemented yet)."""
