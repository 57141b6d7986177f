"""Test helpers that ship with the package: closed-form engine directories (no torch) and
perturbed random weights (weights.py, torch)."""
