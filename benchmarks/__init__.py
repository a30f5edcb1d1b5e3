"""Benchmarks: rollcraft against the parse floor and the tutorial's pipeline (``benchmarks/run.py``)."""
