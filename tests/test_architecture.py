"""The dependency direction of docs/architecture.md, enforced: league/races -> evaluator -> sim.

Every import statement of every module is read (top-level and inside functions alike, so a lazy import cannot
hide a cycle), and a fresh interpreter imports the packages to show what they really pull in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DJANGO_WORLD = ("django", "rest_framework", "drf_spectacular", "dramatiq", "league", "races", "evaluator")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module that ``path`` imports anywhere in its body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # the imported name may be a module
    return names


def modules_of(package: str, include_migrations: bool = False) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py")
                  if include_migrations or "migrations" not in p.parts)


def offending(package: str, forbidden: tuple[str, ...], include_migrations: bool = False) -> list[str]:
    found = []
    for path in modules_of(package, include_migrations):
        for name in sorted(imported_modules(path)):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_the_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    package = ROOT / "sim" / "world"
    probe = package / "_architecture_probe.py"
    probe.write_text("def f():\n    from races.models import Race\n    from . import track\n    import django.db\n")
    try:
        assert {"races.models", "sim.world.track", "django.db"} <= imported_modules(probe)
    finally:
        probe.unlink()


def test_sim_imports_nothing_of_django_or_the_league() -> None:
    assert offending("sim", DJANGO_WORLD) == []


def test_the_evaluator_imports_nothing_from_races() -> None:
    # Its migrations may read races' tables (a migration dependency, not a code dependency).
    assert offending("evaluator", ("races",)) == []


def test_the_sandbox_side_of_the_evaluator_needs_no_django() -> None:
    """The runners and the contract run inside the sandbox: the simulator and the standard library only."""
    for name in ("runner.py", "training_runner.py", "contract.py"):
        path = ROOT / "evaluator" / name
        if not path.exists():
            pytest.fail(f"evaluator/{name} is missing")
        bad = [n for n in imported_modules(path) if n.split(".")[0] in DJANGO_WORLD
               and n != "evaluator" and not n.startswith("evaluator.contract")]
        assert bad == [], f"evaluator/{name} imports {bad}"


def test_importing_the_simulator_loads_no_django() -> None:
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in modules_of("sim")]
    modules = [m.removesuffix(".__init__") for m in modules if not m.endswith("__main__")]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & set(" + repr(DJANGO_WORLD) + ")))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_evaluator_loads_nothing_from_races() -> None:
    """With the league's settings, less the races app: the evaluator must stand on its own."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in modules_of("evaluator")]
    modules = [m.removesuffix(".__init__") for m in modules if "management" not in m]
    code = (
        "import django, importlib, os, sys\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'league.settings'\n"
        "from django.conf import settings\n"
        "settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != 'races']\n"
        "django.setup()\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'races'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
