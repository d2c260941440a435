"""polysent.imports: the static import closure that the rules' ``lib_for`` inputs come from."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from polysent.imports import ImportGraph

LIBRARY = REPO / "src" / "polysent"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def pkg(tmp_path) -> Path:
    """A synthetic package ``pkg`` with every kind of import the closure must follow."""
    return _write(
        tmp_path,
        {
            "pkg/__init__.py": '"""Top package."""\n',
            "pkg/io.py": "import json\n",
            "pkg/unused.py": "import pkg.io\n",
            # a cycle: a imports b at module level, b imports a inside a function
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from pkg import a\n    return a\n",
            # `from package import submodule` and `from package import name`
            "pkg/sub/__init__.py": "from .helpers import helper\nVALUE = 1\n",
            "pkg/sub/helpers.py": "from ..io import json\n\ndef helper():\n    pass\n",
            "pkg/sub/leaf.py": "from . import helpers\n",
            "pkg/sub/deep/__init__.py": "",
            "pkg/sub/deep/mod.py": "from ...a import b\nfrom .. import leaf\n",
            "pkg/typing_only.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import pkg.unused\nelse:\n    import pkg.io\n",
            "pkg/lazy.py": "def run():\n    try:\n        import pkg.sub.leaf as leaf\n"
            "    except ImportError:\n        leaf = None\n    return leaf\n",
            "pkg/blocks.py": "class C:\n    import pkg.io\n"
            "try:\n    pass\nexcept Exception:\n    from pkg import a\n"
            "with open(__file__):\n    from pkg.sub import leaf\n"
            "match 1:\n    case 1:\n        import pkg.unused\n",
            # a sibling package whose name starts like ours must not count
            "pkgx/__init__.py": "",
        },
    )


def _closure(pkg: Path, script_text: str) -> list[str]:
    script = pkg / "scripts" / "run.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(textwrap.dedent(script_text))
    return ImportGraph(pkg / "pkg").closure(script)


def test_plain_import_includes_the_package_init(pkg):
    assert _closure(pkg, "import pkg.io\n") == ["__init__.py", "io.py"]


def test_import_of_the_package_alone(pkg):
    assert _closure(pkg, "import pkg\n") == ["__init__.py"]


def test_cycle_terminates_and_follows_function_level_imports(pkg):
    assert _closure(pkg, "from pkg.b import f\n") == ["__init__.py", "a.py", "b.py"]


def test_from_package_import_submodule_vs_name(pkg):
    # `VALUE` is a name of pkg.sub: only the package (and what its __init__ imports) runs
    assert _closure(pkg, "from pkg.sub import VALUE\n") == [
        "__init__.py",
        "io.py",
        "sub/__init__.py",
        "sub/helpers.py",
    ]
    # `leaf` is a submodule: it runs too
    assert "sub/leaf.py" in _closure(pkg, "from pkg.sub import leaf\n")


def test_relative_imports_resolve_from_the_module_package(pkg):
    assert _closure(pkg, "import pkg.sub.deep.mod\n") == [
        "__init__.py",
        "a.py",
        "b.py",
        "io.py",
        "sub/__init__.py",
        "sub/deep/__init__.py",
        "sub/deep/mod.py",
        "sub/helpers.py",
        "sub/leaf.py",
    ]


def test_imports_inside_functions_and_try_blocks_count(pkg):
    assert "sub/leaf.py" in _closure(pkg, "def main():\n    import pkg.lazy\n")


def test_imports_in_every_kind_of_block_count(pkg):
    got = set(_closure(pkg, "import pkg.blocks\n"))
    assert {"io.py", "a.py", "b.py", "sub/leaf.py", "unused.py"} <= got


def test_type_checking_imports_do_not_count(pkg):
    got = _closure(pkg, "import pkg.typing_only\n")
    assert "unused.py" not in got and "io.py" in got


def test_other_packages_are_ignored(pkg):
    assert _closure(pkg, "import pkgx\nimport json\nfrom os import path\n") == []


def test_star_import_runs_only_the_package(pkg):
    assert _closure(pkg, "from pkg.io import *\n") == ["__init__.py", "io.py"]


def test_missing_module_names_file_and_line(pkg):
    with pytest.raises(ImportError, match=r"run\.py:2 imports pkg\.nope"):
        _closure(pkg, "import os\nimport pkg.nope\n")


def test_syntax_error_names_the_file(pkg):
    (pkg / "pkg" / "io.py").write_text("import pkg.a\ndef broken(:\n")
    with pytest.raises(SyntaxError) as err:
        _closure(pkg, "import pkg.io\n")
    assert err.value.filename.endswith("io.py")


def test_closure_of_a_module_inside_the_package(pkg):
    """A file of the package itself resolves its relative imports from its own package."""
    graph = ImportGraph(pkg / "pkg")
    assert graph.closure(pkg / "pkg" / "sub" / "leaf.py") == [
        "__init__.py",
        "io.py",
        "sub/__init__.py",
        "sub/helpers.py",
    ]


def test_not_a_package(tmp_path):
    with pytest.raises(ValueError, match="no __init__.py"):
        ImportGraph(tmp_path)


# --- the real library ---------------------------------------------------------------------------


def test_rule_scripts_see_the_shared_modules():
    """The modules the hand-written lists missed (issue 11) are in the closures of the rules'
    scripts that use them."""
    graph = ImportGraph(LIBRARY)
    acoustic = graph.closure(REPO / "scripts" / "acoustic.py")
    assert {"__init__.py", "runlog.py", "features/__init__.py", "features/acoustic.py"} <= set(acoustic)
    assert "models/__init__.py" not in acoustic
    assert {"report/table1.py", "report/findings.py", "report/runs.py", "report/common.py"} <= set(
        graph.closure(REPO / "scripts" / "report_table1.py")
    )


# Imports every polysent module in turn (clearing polysent from sys.modules in between) and prints
# which polysent files each import ran. A module that fails to import on its own (an import cycle
# entered from the wrong side) still reports what it ran up to the failure.
_RUNTIME_PROBE = """
import importlib, json, sys
from pathlib import Path
root = Path(sys.argv[1]).resolve()
result = {}
for name in json.loads(sys.argv[2]):
    for key in [k for k in sys.modules if k == "polysent" or k.startswith("polysent.")]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except ImportError:
        pass
    result[name] = sorted(
        Path(m.__file__).resolve().relative_to(root).as_posix()
        for k, m in list(sys.modules.items())
        if (k == "polysent" or k.startswith("polysent.")) and getattr(m, "__file__", None)
    )
print(json.dumps(result))
"""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_static_closure_covers_what_python_really_imports(tmp_path):
    """For every module of the library, the modules Python loads when importing it are in its
    static closure (the closure may hold more: imports inside functions not yet called)."""
    graph = ImportGraph(LIBRARY)
    files = sorted(LIBRARY.rglob("*.py"))
    names = {_module_name(f): f for f in files if "__pycache__" not in f.parts}
    proc = subprocess.run(
        [sys.executable, "-c", _RUNTIME_PROBE, str(LIBRARY), json.dumps(sorted(names))],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    loaded = json.loads(proc.stdout)
    for i, name in enumerate(names):
        importer = tmp_path / f"import_{i}.py"
        importer.write_text(f"import {name}\n")
        static = set(graph.closure(importer))
        missed = set(loaded[name]) - static
        assert not missed, f"importing {name} ran {sorted(missed)}, missing from its closure"
