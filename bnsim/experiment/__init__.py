"""Experiments: one point under several schemes, the same point at every fidelity, sweeps of
points, run in parallel processes (or on Dask) and stored."""
