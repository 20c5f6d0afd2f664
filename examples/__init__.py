"""Runnable wavecast applications: ``python -m examples.gallery`` serves all of them."""
