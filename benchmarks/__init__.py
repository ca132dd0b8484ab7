"""aioudata's benchmarks against their baselines: ``make bench`` (benchmarks/run.py)."""
