"""Evaluation: datasets and their dev/test splits, suites, the systems under test, a cached runner, metrics with
bootstrap intervals, the threshold sweep, reports and the decontamination check (docs/eval/PROTOCOL.md)."""
