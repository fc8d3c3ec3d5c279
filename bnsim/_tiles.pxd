# C types for bnsim/_tiles.py when Cython compiles it (an augmenting .pxd: the .py stays plain
# Python). Addresses and extents fit in 64 bits; exceptions propagate as in Python.
cimport cython

ctypedef long long i64

@cython.locals(start=i64, stop=i64, low=i64, high=i64, row_bytes=i64, row=i64, address=i64)
cdef _append_runs(list out, tuple layout, dict region, object write, object source)

@cython.locals(
    n=i64, c=i64, h=i64, w=i64, n0=i64, n1=i64, c0=i64, c1=i64, h0=i64, h1=i64, unit=i64,
    row=i64, plane=i64, sample=i64, channel=i64, first=i64, length=i64, offset=i64, col0=i64,
    col1=i64, r=i64,
)
cdef _append_runs_4d(
    list out, tuple shape, dict region, i64 base, i64 size, bint blocked, object write,
    object source,
)
