"""Speed against the reference, in one process and one run: ``python -m benchmarks [--only NAME]``."""
