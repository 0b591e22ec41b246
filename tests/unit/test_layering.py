"""The layering rules of STYLE.md §0 (rules 3 and 4), checked on the source.

- The domain (loyalty rules and ledger, models, channels, merchants, segments, campaigns) is plain
  Python: it never imports ``flask`` or ``werkzeug``, so tasks, CLI commands and benchmarks can use it.
- Nothing imports the web layer (``app.web``) except the application factory that mounts it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import app as app_package

APP_DIR = Path(app_package.__file__).resolve().parent
PROJECT_DIR = APP_DIR.parent

DOMAIN_PACKAGES = ["loyalty", "models", "channels", "merchants", "wallet", "messaging", "segments", "campaigns"]
REQUIRED_DOMAIN_PACKAGES = DOMAIN_PACKAGES  # every one of them exists now
# Top-level modules that services and models build on; they stay web-free as well.
PLAIN_MODULES = ["errors.py", "signing.py", "vault.py", "db.py", "db_outage.py", "settings.py", "demo.py"]
WEB_FRAMEWORKS = ("flask", "werkzeug")
# The application factory is the composition root: it alone mounts the web layer (web.init_app).
WEB_IMPORT_ALLOWED = {APP_DIR / "__init__.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """Every module an ``import`` statement in ``path`` may load, as absolute dotted names.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule); relative imports are
    resolved against the file's package. Imports inside functions and ``TYPE_CHECKING`` blocks count too.
    ``source`` parses that text as though it were the file at ``path``.
    """
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"


def is_module_or_child(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")


def python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def domain_files() -> list[Path]:
    files: list[Path] = []
    for name in DOMAIN_PACKAGES:
        if (APP_DIR / name).is_dir():
            files.extend(python_files(APP_DIR / name))
    files.extend(APP_DIR / name for name in PLAIN_MODULES if (APP_DIR / name).is_file())
    return files


def rel(path: Path) -> str:
    return str(path.relative_to(PROJECT_DIR))


# ---------------------------------------------------------------- the helpers themselves


def test_import_resolution_sees_every_form() -> None:
    """Guard against a checker that silently passes: every way of importing is recognised."""
    source = textwrap.dedent(
        """
        import flask
        import werkzeug.exceptions as wz
        from flask import current_app
        from flask.json import dumps
        from . import web
        from ..web.pos import bp
        from app import web as w

        def later():
            from werkzeug import Response
        """
    )
    names = {name for _, name in imported_modules(APP_DIR / "loyalty" / "probe.py", source)}
    assert {"flask", "werkzeug.exceptions", "flask.current_app", "flask.json", "werkzeug"} <= names
    assert "app.loyalty.web" in names  # "from . import web" inside app/loyalty
    assert "app.web.pos" in names  # "from ..web.pos import bp"
    assert "app.web" in names  # "from app import web"
    package_init = {name for _, name in imported_modules(APP_DIR / "__init__.py", "from .web import auth")}
    assert "app.web" in package_init


def test_the_domain_packages_exist() -> None:
    for name in REQUIRED_DOMAIN_PACKAGES:
        assert python_files(APP_DIR / name), f"app/{name} has no Python files; is the layout still right?"


# ---------------------------------------------------------------- no web framework in the domain


@pytest.mark.parametrize("path", domain_files(), ids=rel)
def test_domain_code_does_not_import_the_web_framework(path: Path) -> None:
    offending = [
        f"{rel(path)}:{line} imports {name}"
        for line, name in imported_modules(path)
        if any(is_module_or_child(name, framework) for framework in WEB_FRAMEWORKS)
        or is_module_or_child(name, "app.web")
    ]
    assert not offending, "domain code must stay framework-free (STYLE.md rule 4):\n" + "\n".join(offending)


# ---------------------------------------------------------------- nothing imports the web layer


def test_nothing_outside_app_web_imports_app_web() -> None:
    offending = []
    for path in python_files(APP_DIR):
        if is_module_or_child(module_name(path), "app.web") or path in WEB_IMPORT_ALLOWED:
            continue
        offending.extend(
            f"{rel(path)}:{line} imports {name}"
            for line, name in imported_modules(path)
            if is_module_or_child(name, "app.web")
        )
    assert not offending, "only the application factory may import the web layer:\n" + "\n".join(offending)


def test_the_factory_is_what_mounts_the_web_layer() -> None:
    """The one allowed exception is real (otherwise the allow-list should shrink)."""
    names = {name for _, name in imported_modules(APP_DIR / "__init__.py")}
    assert "app.web" in names


# ---------------------------------------------------------------- at run time


def test_importing_the_ledger_does_not_load_flask() -> None:
    code = (
        "import sys, app.loyalty.ledger\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug'))\n"
        "print(','.join(loaded))\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=60, check=False
    )
    assert result.returncode == 0, f"importing app.loyalty.ledger loaded: {result.stdout.strip()} {result.stderr}"


def test_domain_modules_are_not_what_loads_flask() -> None:
    """Until the package __init__ is fixed: no module other than ``app`` itself triggers the flask import
    when the ledger is imported."""
    code = textwrap.dedent(
        """
        import builtins, sys
        real = builtins.__import__
        importers = set()
        def spy(name, globals=None, locals=None, fromlist=(), level=0):
            if level == 0 and name.split(".")[0] in ("flask", "werkzeug"):
                importers.add((globals or {}).get("__name__", "?"))
            return real(name, globals, locals, fromlist, level)
        builtins.__import__ = spy
        import app.loyalty.ledger
        print(",".join(sorted(i for i in importers if i.startswith("app"))))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=60, check=True
    )
    assert set(filter(None, result.stdout.strip().split(","))) <= {"app"}
