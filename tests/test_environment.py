"""environment.yml, the conda alternative to `make`, agrees with pyproject.toml.

Conda channels cannot be reached from the test machines, so this is a
parse-only check: the file is valid YAML, pins Python 3.11, pip-installs this
package with its test extras, and names no conda package that pyproject.toml
does not declare (pyproject.toml stays the one list of dependencies).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML: a test extra (also pulled in by jupytext)

ROOT = Path(__file__).resolve().parents[1]
#: The interpreter and the installer: conda needs them, pyproject cannot list them.
TOOLCHAIN = {"python", "pip"}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them (case, `-`, `_` and `.` folded)."""
    return re.sub(r"[-_.]+", "-", name).strip().lower()


def requirement_name(spec: str) -> str:
    """The package name of a conda match spec or a PEP 508 requirement.

    ``"conda-forge::numpy>=1.26"`` -> ``"numpy"``, ``"python=3.11"`` -> ``"python"``.
    """
    spec = spec.split("::", 1)[-1].strip()
    return normalise(re.split(r"[\s=<>!~\[;@]", spec, maxsplit=1)[0])


@pytest.fixture(scope="module")
def env() -> dict:
    data = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(data, dict), "environment.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def split_dependencies(env: dict) -> tuple[list[str], list[str]]:
    """(conda specs, pip lines) of the environment's dependencies."""
    conda, pip = [], []
    for item in env.get("dependencies") or []:
        if isinstance(item, dict):
            assert set(item) == {"pip"}, f"unexpected nested section {sorted(item)}"
            pip.extend(str(line) for line in item["pip"])
        else:
            conda.append(str(item))
    return conda, pip


def test_environment_parses_and_is_named(env):
    assert env["name"] == "imgcls"
    assert env.get("channels"), "name the channel(s) explicitly"
    conda, pip = split_dependencies(env)
    assert conda and pip


def test_pins_python_311(env, project):
    conda, _ = split_dependencies(env)
    pythons = [s for s in conda if requirement_name(s) == "python"]
    assert len(pythons) == 1, pythons
    version = re.split(r"[=\s]+", pythons[0].split("::")[-1], maxsplit=1)[1].strip()
    assert re.fullmatch(r"3\.11(\.\*|\.\d+)?", version), pythons[0]
    assert project["requires-python"] == ">=3.11,<3.12"


def test_pip_installs_the_package_with_test_extras(env, project):
    conda, pip = split_dependencies(env)
    assert "pip" in {requirement_name(s) for s in conda}, "a pip section needs pip itself"
    # The same extras as the Makefile's venv, so a conda user can run the same tests as `make test`.
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    extras = re.search(r"pip install --quiet -e '\.\[([a-z,]+)\]'", makefile).group(1)
    assert f"-e .[{extras}]" in [line.split("#")[0].strip() for line in pip]
    assert set(extras.split(",")) <= set(project["optional-dependencies"])
    assert "test" in extras.split(",")


def test_conda_packages_are_declared_in_pyproject(env, project):
    conda, _ = split_dependencies(env)
    declared = {requirement_name(r) for r in project["dependencies"]}
    for extra in project.get("optional-dependencies", {}).values():
        declared |= {requirement_name(r) for r in extra}
    named = {requirement_name(s) for s in conda} - TOOLCHAIN
    assert not named - declared, f"named in environment.yml but not in pyproject.toml: {sorted(named - declared)}"


def test_requirement_name_normalises():
    assert requirement_name("conda-forge::NumPy>=1.26") == "numpy"
    assert requirement_name("python=3.11") == "python"
    assert requirement_name("keras_cv >=0.9") == "keras-cv"
    assert requirement_name("Python.Multipart[extra]>=0.0.9") == "python-multipart"
