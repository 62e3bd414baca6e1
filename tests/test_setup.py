"""The set-up stays in step: README commands, Makefile targets, CI script, pins, notebooks."""
import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def pins(lines):
    """{normalised name: version} from lines like `name==1.2.3`."""
    found = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return found


CONSTRAINTS = pins((ROOT / "constraints.txt").read_text().splitlines())
DIRECT = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]
          + PYPROJECT["project"]["optional-dependencies"]["dev"]]


def make_targets():
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", MAKEFILE, flags=re.M))


def test_readme_setup_is_exactly_the_two_make_commands():
    setup = README.split("## Set-up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.strip().splitlines()]
    assert commands == ["make lab", "make test"]


def test_every_make_target_named_in_the_readme_exists():
    named = set(re.findall(r"`make (\w+)", README)) | set(re.findall(r"^make (\w+)", README, re.M))
    assert {"lab", "test"} <= named
    assert named <= make_targets(), f"README names targets the Makefile lacks: {named - make_targets()}"


def test_ci_runs_make_test():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    lines = [line.strip() for line in ci.read_text().splitlines() if not line.strip().startswith("#")]
    assert "make test" in lines


def test_makefile_dry_run_shows_the_documented_commands():
    """`make -n` prints what the targets would run, without running them."""
    stamp = ROOT / ".venv" / ".segen-installed"
    env = {**os.environ, "MAKEFLAGS": ""}
    lab = subprocess.run(["make", "-n", "-B", "lab"], cwd=ROOT, capture_output=True, text=True, env=env)
    test = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert lab.returncode == 0 and test.returncode == 0, lab.stderr + test.stderr
    for out in (lab.stdout, test.stdout):  # both create/update the same venv
        assert "-m venv .venv" in out
        assert "--constraint constraints.txt --editable .[dev]" in out.replace('"', "")
        assert "ipykernel install --sys-prefix --name segen-jax" in out
    assert "jupyter lab --notebook-dir=notebooks" in lab.stdout
    assert re.search(r"pytest tests notebooks --nbval", test.stdout)
    assert stamp.name in MAKEFILE


def test_every_direct_dependency_is_pinned_inside_its_range():
    for req in DIRECT:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in CONSTRAINTS, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(CONSTRAINTS[name]), \
            f"constraints.txt pins {req.name}=={CONSTRAINTS[name]}, outside pyproject's {req.specifier}"


def test_runtime_dependencies_are_the_agreed_few():
    names = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    # scipy comes with jax and pillow with matplotlib anyway; segen_jax uses them directly
    # (metrics: distance transform; data: VOC/Pet PNG and JPEG files).
    assert names == {"jax", "flax", "optax", "orbax-checkpoint", "numpy", "matplotlib", "tqdm",
                     "scipy", "pillow"}
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_environment_yml_has_the_same_pins():
    env_pins = pins((ROOT / "environment.yml").read_text().splitlines())
    assert env_pins, "environment.yml pins nothing"
    for name, version in env_pins.items():
        assert CONSTRAINTS.get(name) == version, f"environment.yml pins {name}=={version}, " \
                                                 f"constraints.txt {CONSTRAINTS.get(name)}"
    for req in DIRECT:
        assert re.sub(r"[-_.]+", "-", req.name).lower() in env_pins, f"{req.name} missing in environment.yml"
    assert "-c constraints.txt" in (ROOT / "environment.yml").read_text()


def test_this_environment_runs_the_pinned_versions():
    """What the tests ran on is what constraints.txt promises (make installs it)."""
    wrong = {}
    for req in DIRECT:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        installed = importlib.metadata.version(req.name)
        if installed != CONSTRAINTS[name]:
            wrong[req.name] = (installed, CONSTRAINTS[name])
    assert not wrong, f"installed vs pinned: {wrong}; run `make test` to reinstall"


def test_gitignore_keeps_the_tree_clean():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (".venv/", "__pycache__/", ".ipynb_checkpoints/", ".hypothesis/"):
        assert entry in ignored


def test_readme_chapter_table_lists_every_notebook():
    assert NOTEBOOKS, "no chapter notebooks found"
    for nb in NOTEBOOKS:
        assert f"`{nb.stem}`" in README, f"README's chapter table lacks {nb.stem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "segen-jax"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert "segen_jax.full_mode()" in first and "versions()" in first, \
        "the first code cell reads the SEGEN_FULL switch and prints versions"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "run top to bottom in a fresh kernel, then save"
    for cell in code:
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"stored error output: {out.get('ename')}"
            assert "DeprecationWarning" not in "".join(out.get("text", "")), "stored warning output"
    assert any(c["cell_type"] == "markdown" and "Exercise" in "".join(c["source"])
               for c in nb["cells"]), "each chapter ends with exercises"
