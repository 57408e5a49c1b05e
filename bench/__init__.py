"""Benchmarks of raster_mlir against numpy, JAX and PyTorch.

`python -m bench` is the harness (see `bench/__main__.py`); `bench/workloads/`
holds one module per implementation; `bench/timing.py` the interleaved timing
helpers; `bench/report.py` the machine description and the tables. The
scripts `bench_*.py` are single-purpose benchmarks of parts of the compiler.
"""
