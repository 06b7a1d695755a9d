"""The leaf every layer may import: user-facing errors, durable file helpers, verified registry files, statistics,
energy measurement and estimation.

Nothing here imports another package of the project (an import-linter contract checks it).
"""
