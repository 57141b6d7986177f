"""Test helpers that ship with the package (no torch): closed-form engine directories."""
