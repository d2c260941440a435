"""Architecture rules of the library: no import cycles, no workflow paths, no module-level defaults."""

from __future__ import annotations

import graphlib

from conftest import REPO
from polysent.imports import ImportGraph

SRC = REPO / "src" / "polysent"


def test_the_library_has_no_import_cycles():
    graph = ImportGraph(SRC).graph()
    assert "polysent.align.base" in graph["polysent.align.mfa"]  # the graph sees real edges
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle in src/polysent: {' -> '.join(err.args[1])}") from None


def test_cycle_detection_catches_a_package_back_edge(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("def run():\n    from pkg.sub import backend\n")
    (pkg / "sub" / "backend.py").write_text("from pkg.sub import run\n")
    graph = ImportGraph(pkg).graph()
    assert graph["pkg.sub.backend"] == {"pkg.sub"} and graph["pkg.sub"] == {"pkg.sub.backend"}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return
    raise AssertionError("the back-edge pkg.sub.backend -> pkg.sub was not reported")
