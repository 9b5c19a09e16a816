"""prepost's YAML files read strictly: duplicate keys and YAML 1.1 booleans are errors.

PyYAML (and Snakemake, which loads the config with it) silently keeps the last of two equal
keys, so a dataset block pasted twice replaces the first, and it reads the unquoted words
On/Off/Yes/No/y/n as booleans, so GEO's own characteristic values (``visit: On``) become
``True`` and a pairing map no longer matches its data. Both are reported here with the file,
the line(s) and the fix, instead of surfacing as a wrong result or a TypeError later.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

__all__ = ["ConfigError", "load_strict", "check_scalars"]


class ConfigError(ValueError):
    """A YAML file or a config value that prepost cannot read as meant."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, naming both lines."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader reports unhashable keys itself
        if key in seen:
            raise ConfigError(
                f"{loader.name}, line {key_node.start_mark.line + 1}: duplicate key {key!r} (first on "
                f"line {seen[key] + 1}); YAML would silently keep only the second. Remove or rename one"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_strict(path: str | os.PathLike):
    """Parse a YAML file; duplicate keys are a ConfigError naming the file and both lines."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    finally:
        loader.dispose()


# Mappings whose keys are data values (GEO characteristics, column names) and lists of names:
# a key or item that YAML turned into a bool or a number was a word the user meant as text.
VALUE_MAPS = {"map", "sample_map"}


def _describe(value) -> str:
    if isinstance(value, bool):
        return f"{value} (YAML reads unquoted On/Off/Yes/No/y/n/True/False as booleans)"
    return f"{value!r} (a number to YAML)"


def check_scalars(tree, where: str) -> None:
    """Raise ConfigError at the first bool or number where prepost expects text: any mapping
    key, a value of a ``map``/``sample_map``, an item of a list of strings. ``where`` is the
    key path of ``tree`` (e.g. "datasets")."""

    def walk(node, path: str, in_value_map: bool) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise ConfigError(
                        f"config key {path}: the key {_describe(k)} must be text; quote it as "
                        f"written in the data, e.g. 'On': post or '0': pre"
                    )
                sub = f"{path}.{k}"
                if in_value_map and not isinstance(v, str):
                    raise ConfigError(f"config key {sub}: the value {_describe(v)} must be text; quote it")
                walk(v, sub, k in VALUE_MAPS)
        elif isinstance(node, list):
            if any(isinstance(x, str) for x in node):
                for i, x in enumerate(node):
                    if isinstance(x, (bool, int, float)):
                        raise ConfigError(f"config key {path}[{i}]: the item {_describe(x)} must be text; quote it")
            for i, x in enumerate(node):
                walk(x, f"{path}[{i}]", False)

    walk(tree, where, False)
