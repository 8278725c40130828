"""One import name (#11): tasks/ and flows/ install as corpusclean.tasks and corpusclean.flows,
never as top-level `tasks`/`flows` (which other Prefect projects use for their own code)."""

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import corpusclean

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _source_packages() -> set[str]:
    """Every folder with an __init__.py under tasks/ and flows/, as its installed dotted name."""
    names = {"corpusclean"}
    for top in ("tasks", "flows"):
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO).parts
            names.add(".".join(("corpusclean", *rel)))
    return names


def test_every_source_package_is_installed_under_corpusclean():
    # a new subpackage that is not listed would be missing from the wheel (the editable install hides that)
    assert set(SETUPTOOLS["packages"]) == _source_packages()
    assert all(name == "corpusclean" or name.startswith("corpusclean.") for name in SETUPTOOLS["packages"])
    assert SETUPTOOLS["package-dir"] == {"corpusclean": "corpusclean", "corpusclean.flows": "flows",
                                         "corpusclean.tasks": "tasks"}
    assert PYPROJECT["project"]["scripts"] == {"corpusclean": "corpusclean.flows.cli:main"}


def test_the_data_files_of_the_stages_are_package_data():
    patterns = SETUPTOOLS["package-data"]["corpusclean.tasks.stages"]
    data = {p for pattern in patterns for p in (REPO / "tasks" / "stages").glob(pattern)}
    on_disk = {p for sub in ("rules", "lang", "models") for p in (REPO / "tasks" / "stages" / sub).iterdir()
               if p.is_file()}
    assert data == on_disk and data


def test_code_inside_the_package_never_imports_top_level_tasks_or_flows():
    offenders = []
    for top in ("tasks", "flows", "corpusclean"):
        for path in (REPO / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in ("tasks", "flows")]
    assert offenders == []


def test_importing_the_command_loads_no_top_level_tasks_or_flows():
    code = ("import sys, corpusclean.flows.cli, corpusclean.tasks.corpus.shard; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tasks', 'flows')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_python_dash_m_corpusclean_is_the_command():
    run = subprocess.run([sys.executable, "-m", "corpusclean", "-h"], capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    assert "Usage: python -m corpusclean" in run.stdout and "run" in run.stdout


def test_the_package_resolves_to_this_checkout():
    import corpusclean.tasks as tasks_package

    assert Path(corpusclean.__file__).resolve().parent == REPO / "corpusclean"
    assert Path(tasks_package.__file__).resolve() == REPO / "tasks" / "__init__.py"


def test_arrow_uses_the_system_allocator_unless_the_user_chose_one():
    # mimalloc's reserved segments kept ~35 MB more resident per worker process (corpusclean/__init__.py)
    code = "import corpusclean.tasks.corpus.shard, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/", env=env)
    assert ours.stdout.strip() == "system"
    theirs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/",
                            env={**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"})
    assert theirs.stdout.strip() == "mimalloc"
