"""NumPy reference kernels and the schedule executor."""
