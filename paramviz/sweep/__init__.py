"""Parameterization sweeps: a grid of arms run into one directory, and the report built from it."""
