"""The zoo's manifest, shipped inside the wheel as ``zoo._registry``.

This folder holds data, not code: ``papers.json`` and one ``<variant>.json`` per model
variant. It is a package only so that setuptools can map it into the wheel (see
``[tool.setuptools.package-dir]`` in pyproject.toml); read it through ``zoo.hub.registry``.
"""
