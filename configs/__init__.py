"""The zoo's mmengine / mmseg configs, shipped inside the wheel as ``zoo._configs``.

These are config files, not code to import: mmengine reads them with ``Config.fromfile``.
The folder is a package only so that setuptools maps it into the wheel; find and copy them
with ``zoo configs list | path NAME | copy NAME DEST`` (``zoo.configs``).
"""
