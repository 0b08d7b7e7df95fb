"""Runs of many inputs: time budgets, one input's task, batches (local processes or Ray)."""
