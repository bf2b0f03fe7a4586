"""Datasets embedded in ganstyle_jax (`synthetic`: procedural photos and their known painting)."""
