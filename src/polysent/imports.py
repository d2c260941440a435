"""Which modules of a package a Python file executes: its static import closure.

Snakemake does not track Python imports, so the rules list the library files their script runs
as inputs (``lib_for`` in ``workflow/rules/common.smk``). This module derives that list from the
code itself with :mod:`ast`, so that editing any library module re-runs exactly the rules whose
scripts import it, directly or through other modules.

What counts as an import of the package (all of them run when the file runs):
- ``import pkg.a.b`` and ``from pkg.a import b``, where ``b`` may be a submodule or a name;
- relative imports inside the package (``from . import x``, ``from ..a import y``);
- imports anywhere in the file, inside functions and ``try`` blocks too; only the body of an
  ``if TYPE_CHECKING:`` block is left out, because it never runs;
- importing a submodule runs every enclosing package's ``__init__.py``, so those count too.

Dynamic imports (``importlib.import_module(name)``) are not followed; the rule scripts use none.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

_RELATIVE_IMPORT = re.compile(rb"\bfrom\s+\.")


class ImportGraph:
    """The modules of one package (a folder with ``__init__.py``) and the imports between them.

    Each file is parsed at most once, so computing the closures of many scripts stays cheap.
    """

    def __init__(self, package_dir: Path | str, package: str | None = None):
        self.package_dir = Path(package_dir)
        self.package = package or self.package_dir.name
        if not (self.package_dir / "__init__.py").is_file():
            raise ValueError(f"{self.package_dir} is not a package: it has no __init__.py")
        self._direct: dict[Path, frozenset[str]] = {}

    def closure(self, script: Path | str) -> list[str]:
        """Sorted paths, relative to the package folder, of every package module that running
        ``script`` imports, directly or transitively (``script`` itself may be outside or inside
        the package)."""
        script = Path(script)
        seen: set[str] = set()
        todo = list(self._imports_of(script, self._module_name(script)))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            path = self._file_of(name)
            todo.extend(self._imports_of(path, name) - seen)
        return sorted(self._file_of(name).relative_to(self.package_dir).as_posix() for name in seen)

    def graph(self) -> dict[str, set[str]]:
        """Module -> the package modules its code names in an import statement.

        Only the named modules, not the packages whose ``__init__`` runs on the way: a package
        that imports its submodules would otherwise form a cycle with each of them. ``from pkg
        import sub`` names only the submodule; a module that takes a name from its own package's
        ``__init__`` (``from polysent.align import AlignError`` inside ``polysent.align.mfa``)
        names the package, so that back-edge is a real cycle.
        """
        out: dict[str, set[str]] = {}
        for path in sorted(self.package_dir.rglob("*.py")):
            name = self._module_name(path)
            tree = ast.parse(path.read_bytes(), filename=str(path))
            is_package = path.name == "__init__.py"
            named: set[str] = set()
            for node in _executed_imports(tree):
                targets = set(self._targets(node, name, is_package, path))
                if isinstance(node, ast.ImportFrom):
                    # `from pkg import sub` names only the submodule when every name is one.
                    module = self._absolute_from(node, name, is_package, path)
                    if all(self._is_module(f"{module}.{a.name}") for a in node.names if a.name != "*"):
                        targets.discard(module)
                named |= targets
            out[name] = named - {name}
        return out

    # --- resolving names to files ----------------------------------------------------------------

    def _file_of(self, name: str) -> Path:
        """The file of package module ``name`` (``pkg.a.b`` -> a/b.py or a/b/__init__.py)."""
        parts = name.split(".")[1:]
        base = self.package_dir.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_suffix(".py") if parts else None):
            if candidate is not None and candidate.is_file():
                return candidate
        raise KeyError(name)

    def _is_module(self, name: str) -> bool:
        try:
            self._file_of(name)
        except KeyError:
            return False
        return True

    def _module_name(self, path: Path) -> str | None:
        """Dotted name of ``path`` if it lies inside the package, else None (a script)."""
        try:
            rel = path.resolve().relative_to(self.package_dir.resolve())
        except ValueError:
            return None
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join([self.package, *parts])

    def _with_parents(self, name: str) -> set[str]:
        """``pkg.a.b`` -> {pkg, pkg.a, pkg.a.b}: importing a submodule runs its packages' inits."""
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}

    # --- reading one file's imports --------------------------------------------------------------

    def _imports_of(self, path: Path, name: str | None) -> frozenset[str]:
        """Package modules (with their parent packages) that the file ``path`` imports."""
        key = path.resolve()
        if key not in self._direct:
            source = path.read_bytes()
            found: set[str] = set()
            # Parsing is the cost at DAG build: skip files that cannot name the package at all.
            if self.package.encode() in source or _RELATIVE_IMPORT.search(source):
                tree = ast.parse(source, filename=str(path))
                is_package = path.name == "__init__.py"
                for node in _executed_imports(tree):
                    for target in self._targets(node, name, is_package, path):
                        found |= self._with_parents(target)
            self._direct[key] = frozenset(found)
        return self._direct[key]

    def _targets(self, node: ast.Import | ast.ImportFrom, name, is_package, path) -> Iterator[str]:
        """Package modules named by one import statement (checked to exist)."""
        if isinstance(node, ast.Import):
            for alias in node.names:
                if self._in_package(alias.name):
                    yield self._checked(alias.name, node, path)
            return
        module = self._absolute_from(node, name, is_package, path)
        if module is None or not self._in_package(module):
            return
        yield self._checked(module, node, path)
        # `from pkg.a import b` also imports the submodule pkg.a.b when there is one.
        for alias in node.names:
            if alias.name != "*" and self._is_module(f"{module}.{alias.name}"):
                yield f"{module}.{alias.name}"

    def _checked(self, module: str, node: ast.stmt, path: Path) -> str:
        if not self._is_module(module):
            raise ImportError(f"{path}:{node.lineno} imports {module}, which is not a module of {self.package_dir}")
        return module

    def _in_package(self, module: str) -> bool:
        return module == self.package or module.startswith(self.package + ".")

    def _absolute_from(self, node: ast.ImportFrom, name, is_package, path) -> str | None:
        """The absolute module of ``from X import ...`` (resolving leading dots)."""
        if not node.level:
            return node.module
        if name is None:
            raise ImportError(f"{path}:{node.lineno}: relative import outside the package")
        # The package a relative import starts from: the module's own package.
        parts = name.split(".") if is_package else name.split(".")[:-1]
        up = node.level - 1
        if up >= len(parts):
            raise ImportError(f"{path}:{node.lineno}: relative import beyond {self.package}")
        base = parts[: len(parts) - up]
        return ".".join(base + ([node.module] if node.module else []))


def _executed_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` except those under ``if TYPE_CHECKING:``.

    Only statement bodies are walked (imports are statements, never inside expressions), which
    keeps this cheap enough to run for every rule at DAG build.
    """
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        skip_body = isinstance(node, ast.If) and _is_type_checking(node.test)
        for field in _STATEMENT_FIELDS:
            if field == "body" and skip_body:
                continue
            stack.extend(getattr(node, field, ()))


# Fields that hold statements (or handlers/cases holding statements) in compound statements.
_STATEMENT_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
