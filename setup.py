"""Build toondb's Cython extensions.

Every extension is compiled with warnings visible (-Wall) and Cython's
language level 3; set TOONDB_DEBUG=1 for an unoptimised build with asserts.
"""

import os
import sys

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - the build requires Cython (pyproject.toml)
    sys.exit("building toondb needs Cython >= 3: pip install cython")

DEBUG = os.environ.get("TOONDB_DEBUG") == "1"

compile_args = ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
compile_args += ["-O0", "-g"] if DEBUG else ["-O3"]
define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if not DEBUG:
    define_macros.append(("NDEBUG", None))

# Every extension whose source is present; TOONDB_EXTENSIONS="_hnsw" (comma
# separated) builds only the named ones, for working on one of them alone.
MODULES = {
    "_btree": "storage",
    "_hnsw": "vector",
    "_rowcodec": "codec",
    "_tokenize": "text",
    "_postings": "text",
    "_jsonb": "sql",
    "_lexer": "sql",
}
EXTENSIONS = [n for n, pkg in MODULES.items() if os.path.exists(f"toondb/{pkg}/{n}.pyx")]
if os.environ.get("TOONDB_EXTENSIONS"):
    EXTENSIONS = [n for n in os.environ["TOONDB_EXTENSIONS"].split(",") if n in EXTENSIONS]


def extension(name):
    pkg = MODULES[name]
    include_dirs = [f"toondb/{pkg}"]
    libraries = []
    if name == "_hnsw":
        import numpy

        # the kernel checksums its chunks with the storage engine's CRC-32C
        include_dirs += ["toondb/storage", numpy.get_include()]
    return Extension(
        f"toondb.{pkg}.{name}",
        [f"toondb/{pkg}/{name}.pyx"],
        include_dirs=include_dirs,
        libraries=libraries,
        extra_compile_args=compile_args,
        define_macros=define_macros,
    )


setup(
    ext_modules=cythonize(
        [extension(name) for name in EXTENSIONS],
        language_level=3,
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": DEBUG,
            "embedsignature": True,
        },
        annotate=False,
    ),
)
