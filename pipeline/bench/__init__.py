"""Benchmarks: what `pantau bench` measures; the worker never imports this package."""
