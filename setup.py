"""Builds the optional C modules; everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a compiler weft still installs, and the Python twins run instead.
        Extension(
            "ml.parsing._speedups",
            ["ml/parsing/_speedups.c"],
            depends=["ml/json_out.h"],
            optional=True,
        ),
        Extension(
            "ml.datasets._speedups",
            ["ml/datasets/_speedups.c"],
            depends=["ml/json_out.h"],
            optional=True,
        ),
    ]
)
