"""skganem's reproducible benchmark suite: ``python -m benchmarks --help``."""
