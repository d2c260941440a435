"""Defaults live only in the schemas: no ``cfg.get("key", literal)`` on a config slice in src/polysent.

Library code completes its section with :func:`polysent.config.complete` and indexes it
(``cfg["key"]``), so a CLI call, a test and a workflow rule with the same partial settings see the
same values, and a default cannot drift from the schema's.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from conftest import REPO

SRC = REPO / "src" / "polysent"

# Names that hold a config slice (``cfg``, ``train_cfg``, ``settings``, ``exp``, ``entry`` ...).
CONFIG_NAME = re.compile(r"(^|_)(cfg|config|conf|settings|params|exp|entry|section)s?($|_)", re.I)
# Receivers that are data, not settings, even when a key shares a schema key's name: store and
# file metadata, and the schema documents themselves.
DATA_NAMES = {"meta", "metadata", "schema", "props", "node", "error"}

# Files allowed to hold inline defaults while a branch that cleans them is open (empty: every
# file is clean; test_the_allowlist_only_shrinks fails once a listed file is clean).
ALLOWED: set[str] = set()


@functools.lru_cache(maxsize=1)
def schema_keys_with_defaults() -> frozenset[str]:
    """Every property name that has a ``default:`` somewhere in the config schema."""
    from polysent.config import load_schema, schema_dir

    keys: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, prop in (node.get("properties") or {}).items():
                if isinstance(prop, dict) and "default" in prop:
                    keys.add(key)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema(schema_dir()))
    return frozenset(keys)


def _receiver(node: ast.expr) -> str | None:
    """The name a ``.get`` chain starts from: ``cfg`` for ``cfg["a"].get``/``cfg.get("a", {}).get``."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return node.attr
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        elif isinstance(node, ast.BoolOp):
            node = node.values[0]
        else:
            return None


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Constant):
        return node.value is not None  # .get(key, None) asks "is it set?", it supplies no default
    return isinstance(node, (ast.List, ast.Dict, ast.Tuple, ast.Set))


def inline_defaults(path: Path, schema_keys: frozenset[str]) -> list[str]:
    """``file:line  call`` of each ``<config slice>.get("key", literal)`` in ``path``: the receiver
    is named like a config slice, or the key is a schema key with a default."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and _is_literal(node.args[1])
        ):
            continue
        receiver = _receiver(node.func.value)
        if receiver in DATA_NAMES:
            continue
        if (receiver and CONFIG_NAME.search(receiver)) or node.args[0].value in schema_keys:
            where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            found.append((node.lineno, f"{where}:{node.lineno}  {ast.unparse(node)}"))
    return [hit for _, hit in sorted(found)]


def _hits() -> dict[str, list[str]]:
    keys = schema_keys_with_defaults()
    hits = {}
    for path in sorted(SRC.rglob("*.py")):
        found = inline_defaults(path, keys)
        if found:
            hits[path.relative_to(SRC).as_posix()] = found
    return hits


def test_no_inline_defaults_on_config_slices():
    hits = _hits()
    bad = [hit for rel, found in hits.items() if rel not in ALLOWED for hit in found]
    assert not bad, (
        "inline defaults on config slices (complete the section with polysent.config.complete and "
        "index it; the default belongs in workflow/schemas/config/):\n  " + "\n  ".join(bad)
    )


def test_the_allowlist_only_shrinks():
    """A listed file that is clean leaves the list, so the list never hides a new default."""
    missing = sorted(rel for rel in ALLOWED if not (SRC / rel).exists())
    clean = sorted(rel for rel in ALLOWED - set(_hits()) if (SRC / rel).exists())
    assert not missing and not clean, f"remove from ALLOWED: {missing + clean}"


def test_the_check_sees_inline_defaults(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f(cfg, train_cfg, meta, opts, rows):\n"
        "    a = cfg.get('beam', 10)\n"  # config-named receiver
        "    b = train_cfg['x'].get('y', [])\n"  # chain rooted at a config name
        "    c = opts.get('dpi', 110)\n"  # a schema key with a default
        "    d = cfg.get('plausibility')\n"  # no default: fine
        "    e = cfg.get('beam', None)\n"  # None: fine
        "    g = meta.get('labels', [])\n"  # store metadata: fine
        "    h = rows.get('name', 'x')\n"  # data, not a schema key: fine
        "    return a, b, c, d, e, g, h\n"
    )
    found = inline_defaults(module, frozenset({"dpi", "labels"}))
    assert [hit.split()[-1] for hit in found] == ["10)", "[])", "110)"], found
    assert [int(hit.split()[0].rsplit(":", 1)[1]) for hit in found] == [2, 3, 4]
