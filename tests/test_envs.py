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
                if spec.split("#")[0].strip() == "-e ..":  # the workflow's own package
                    continue
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


def _imports(path: Path) -> set[str]:
    """Modules a source file imports anywhere (module level or inside functions: conservative)."""
    import ast

    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods.add(node.module)
            if node.module.split(".")[0] == "prepost":  # from prepost.de import contrasts
                mods |= {f"{node.module}.{a.name}" for a in node.names}
    return mods


def script_closure(script: Path) -> tuple[set[str], list[Path]]:
    """Third-party top-level modules a rule script can import, following prepost's own modules
    transitively; and the source files visited."""
    import sys

    seen, todo, third = [], [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        for mod in _imports(path):
            parts = mod.split(".")
            if parts[0] == "prepost":
                base = ROOT / "src" / Path(*parts)
                for source in (base.with_suffix(".py"), base / "__init__.py"):
                    if source.is_file():
                        todo.append(source)
            elif parts[0] not in sys.stdlib_module_names and parts[0] != "snakemake":
                third.add(parts[0])
    if any("parquet" in p.read_text() for p in seen):
        third.add("pyarrow")  # pandas' parquet engine, never imported by name
    return third, seen


def rule_envs() -> dict[str, tuple[Path, Path]]:
    """rule -> (conda env file, script) from the snakefmt-formatted rule files."""
    out = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in ("\n" + smk.read_text()).split("\nrule ")[1:]:
            name = block.split(":", 1)[0].strip()
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            assert env and script, f"{smk.name}: rule {name} lacks conda: or script:"
            out[name] = ((smk.parent / env.group(1)).resolve(), (smk.parent / script.group(1)).resolve())
    return out


def test_every_env_is_used_by_a_rule():
    used = {env for env, _ in rule_envs().values()}
    assert used == {p.resolve() for p in ENVS}, f"envs used by rules {sorted(used)}, present {ENVS}"


@pytest.mark.parametrize("rule", sorted(rule_envs()))
def test_rule_env_provides_every_module_its_script_imports(rule):
    """Every third-party module the rule's script can import (through prepost's modules) comes
    from a distribution pinned in that rule's environment (gseapy was once missing)."""
    from importlib.metadata import packages_distributions

    env, script = rule_envs()[rule]
    assert env.is_file(), f"rule {rule}: conda env {env} does not exist"
    third, _ = script_closure(script)
    assert "pandas" in third, f"rule {rule}: import analysis found no pandas in {script.name}"
    dists = packages_distributions()
    pinned = {name for name, _ in env_pins(env)}
    missing = sorted(m for m in third if not any(normalise(d) in pinned for d in dists.get(m, [m])))
    assert not missing, f"rule {rule}: {env.name} pins no distribution for module(s) {missing}"


def test_closure_sees_the_lazy_imports():
    """The analysis follows imports inside functions (pydeseq2 is imported lazily by de.general)."""
    third, seen = script_closure(ROOT / "workflow/scripts/de.py")
    assert {"pydeseq2", "scipy", "pyarrow"} <= third
    assert ROOT / "src/prepost/de/nb/paired.py" in seen
    assert "gseapy" in script_closure(ROOT / "workflow/scripts/enrich.py")[0]
    assert "pydeseq2" not in script_closure(ROOT / "workflow/scripts/download.py")[0]


# --------------------------------------------------------------------------- prepost in the envs


def test_no_env_installs_a_relative_path():
    """Snakemake copies an env file to .snakemake/conda/ and conda runs pip from there, so a
    relative `pip: -e ..` would point into .snakemake/, not at the workflow."""
    for path in ENVS:
        for dep in yaml.safe_load(path.read_text())["dependencies"]:
            for spec in dep.get("pip", []) if isinstance(dep, dict) else []:
                assert not re.match(r"^(-e\s+)?\.", spec.strip()), f"{path.name}: pip {spec!r}"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_every_env_installs_prepost_after_creation(path):
    script = path.with_suffix(".post-deploy.sh")
    assert script.is_file(), f"{path.name}: no {script.name} (prepost would be missing from the env)"
    assert script.read_text() == (ROOT / "envs/analysis.post-deploy.sh").read_text()
    assert "PREPOST_WORKFLOW_DIR" in (ROOT / "workflow/rules/common.smk").read_text()


def _fake_env(tmp_path):
    """A throwaway Python environment standing in for a fresh conda env (conda is not here)."""
    import subprocess
    import sys

    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    return env_dir


def test_post_deploy_script_installs_this_checkout(tmp_path):
    import os
    import subprocess

    env_dir = _fake_env(tmp_path)
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PREPOST_WORKFLOW_DIR": str(ROOT), "PYTHONPATH": ""}
    script = ROOT / "envs/analysis.post-deploy.sh"
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where = subprocess.run([str(env_dir / "bin/python"), "-c", "import prepost; print(prepost.__file__)"],
                           env=env, capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.strip() == str(ROOT / "src/prepost/__init__.py"), where.stderr


def test_post_deploy_script_without_a_checkout_says_why(tmp_path):
    import os
    import subprocess

    env = {**os.environ, "PREPOST_WORKFLOW_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "envs/report.post-deploy.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "is not a prepost checkout" in proc.stderr
