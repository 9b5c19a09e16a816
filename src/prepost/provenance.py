"""What software a step actually ran with, recorded by the step itself.

Why here and not in the report: under ``--software-deployment-method conda`` each rule runs in
its own environment, so only the rule's own interpreter knows the versions that produced its
output. Each step writes ``software_versions(...)`` into its JSON record (prepare.json,
de/{contrast}.fit.json, enrich/{contrast}/run.json) and the report collects them.
"""

from __future__ import annotations

import platform
from importlib import metadata


def software_versions(*packages: str) -> dict[str, str]:
    """{'python': ..., 'prepost': ..., package: version} of the running interpreter; a package
    that is not installed is left out (a step lists what it may use, e.g. pydeseq2)."""
    out = {"python": platform.python_version()}
    for name in ("prepost", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
