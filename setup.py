"""Builds the optional C readers; everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a compiler weft still installs and parses with the Python readers.
        Extension("ml.parsing._speedups", ["ml/parsing/_speedups.c"], optional=True),
    ]
)
