"""The conda environments (envs/*.yaml) pin the same versions as requirements.txt, so that
`--software-deployment-method conda` runs the code that the pip lock was tested with."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
# conda-forge names that differ from the PyPI distribution name
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}
NOT_IN_LOCK = {"python", "pip"}  # the interpreter and installer, not pinned in requirements.txt


def normalise(name: str) -> str:
    """PEP 503 name normalisation (PyYAML == pyyaml, formulaic_contrasts == formulaic-contrasts)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for lineno, line in enumerate((ROOT / "requirements.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)(?:\s*;.*)?", line)
        assert m, f"requirements.txt line {lineno}: expected 'name==version', got {line!r}"
        pins[normalise(m.group(1))] = m.group(2)
    return pins


def env_pins(path: Path) -> list[tuple[str, str]]:
    """(normalised PyPI name, version) of every conda and pip dependency of an environment."""
    deps = yaml.safe_load(path.read_text())["dependencies"]
    out = []
    for dep in deps:
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", spec.strip())
                assert m, f"{path.name}: pip dependency {spec!r} is not pinned as name==version"
                out.append((normalise(m.group(1)), m.group(2)))
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)\s*=+\s*([^\s=]+)(?:=\S+)?", str(dep).strip())
        if str(dep).strip() in NOT_IN_LOCK:
            continue
        assert m, f"{path.name}: conda dependency {dep!r} is not pinned as name=version"
        name = CONDA_TO_PYPI.get(m.group(1), m.group(1))
        out.append((normalise(name), m.group(2)))
    return out


def test_there_are_environments():
    assert ENVS, "no envs/*.yaml"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_versions_match_requirements(path):
    pins = requirement_pins()
    mismatches = []
    for name, version in env_pins(path):
        if name == "python":
            continue
        if name not in pins:
            mismatches.append(f"{name}={version}: not in requirements.txt")
        elif pins[name] != version:
            mismatches.append(f"{name}: env {version}, requirements.txt {pins[name]}")
    assert not mismatches, f"{path.name} disagrees with requirements.txt: " + "; ".join(mismatches)


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_python_is_the_supported_one(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pythons = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert pythons == ["python=3.11"], f"{path.name}: python pin {pythons}, expected python=3.11"


def test_env_provides_every_package_the_code_imports():
    """Every third-party module imported by the package and the rule scripts comes from a
    distribution pinned in the rules' environment (gseapy was once missing)."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    sources = [*(ROOT / "src/prepost").glob("*.py"), *(ROOT / "workflow/scripts").glob("*.py")]
    modules = set()
    for src in sources:
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    third_party = sorted(m for m in modules
                         if m not in sys.stdlib_module_names and m not in {"prepost", "snakemake"})
    assert "gseapy" in third_party and "numpy" in third_party
    for path in ENVS:
        pinned = {name for name, _ in env_pins(path)}
        missing = [m for m in third_party
                   if not any(normalise(d) in pinned for d in dists.get(m, [m]))]
        assert not missing, f"{path.name}: no pinned distribution for imported module(s) {missing}"
