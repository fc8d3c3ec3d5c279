# C types for bnsim/trace/_tiles.py when Cython compiles it (an augmenting .pxd: the .py stays plain
# Python). Addresses and extents fit in 64 bits; exceptions propagate as in Python.
cimport cython

ctypedef long long i64

@cython.locals(
    index=i64, outer=i64, inner=i64, offset=i64, taken=i64, first=i64, length=i64,
    inner_count=i64, inner_stride=i64, outer_count=i64, outer_stride=i64, start=i64, low=i64,
    high=i64, stop=i64,
)
cpdef stream_ranges(tuple stream, list cursor, i64 target, i64 line, list out)

@cython.locals(total=i64)
cdef _add_stream(list streams, list blocks, object kind, object source)

@cython.locals(start=i64, stop=i64, low=i64, high=i64, row_bytes=i64, order=i64)
cdef _append_blocks(list out, tuple layout, dict region)

@cython.locals(
    n=i64, c=i64, h=i64, w=i64, n0=i64, n1=i64, c0=i64, c1=i64, h0=i64, h1=i64, unit=i64,
    row=i64, plane=i64, sample=i64, first=i64, col0=i64, col1=i64,
)
cdef _append_blocks_4d(list out, tuple shape, dict region, i64 base, i64 size, bint blocked)

@cython.locals(
    n=i64, c=i64, h=i64, w=i64, n0=i64, n1=i64, c0=i64, c1=i64, h0=i64, h1=i64, pixel=i64,
    row=i64, sample=i64, run=i64, first=i64, col0=i64, col1=i64, whole_pixels=bint,
)
cdef _append_blocks_nhwc(list out, tuple shape, dict region, i64 base, i64 size)
