"""Build the compiled parts; everything else is in pyproject.toml.

Two extensions, built from Cython (a build requirement) with the C compiler: the memory model
(bnsim/sim/_memory.pyx, the one implementation of bnsim's caches and DRAM channels) and the tile
loop (bnsim/trace/_tiles.py, plain Python that Cython compiles with the types of bnsim/trace/_tiles.pxd; it
also runs uncompiled, more slowly). Installation fails if either does not build.
"""

from Cython.Build import cythonize
from setuptools import setup

setup(
    ext_modules=cythonize(
        ["bnsim/sim/_memory.pyx", "bnsim/sim/_dram.pyx", "bnsim/trace/_tiles.py"],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )
)
