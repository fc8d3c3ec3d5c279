"""Build the optional compiled parts; everything else is in pyproject.toml.

Two extensions: the memory model (bnsim/sim/_fastmemory.pyx) and the tile loop (bnsim/_tiles.py,
plain Python that Cython compiles with the types of bnsim/_tiles.pxd). If Cython or a C compiler is
missing, or compilation fails, the package installs without them and bnsim runs the pure-Python code
(same results, about three times slower).
"""

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 (any build failure leaves the pure-Python path)
            self.warn(f"bnsim: compiled parts not built ({error}); using pure Python")

    def build_extension(self, ext) -> None:  # noqa: ANN001 (setuptools type)
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            self.warn(f"bnsim: could not build {ext.name} ({error}); using pure Python")


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    return cythonize(
        ["bnsim/sim/_fastmemory.pyx", "bnsim/_tiles.py"],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
