"""Parsing of the repeated ``KEY=VALUE`` options the subcommands share (``--set``, ``--store``)."""

from __future__ import annotations

from collections.abc import Iterable

import yaml


def key_values(items: Iterable[str], flag: str, form: str = "KEY=VALUE") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; an item without a key or value is named."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value:
            raise SystemExit(f"{flag} expects {form}, got {item!r}")
        out[key.strip()] = value
    return out


def dotted_overrides(items: Iterable[str], *section: str) -> dict:
    """``--set a.b=VALUE`` items as a nested override of the config at ``section`` (values are YAML)."""
    overrides: dict = {}
    for key, value in key_values(items, "--set").items():
        node = overrides
        for part in (*section, *key.split(".")[:-1]):
            node = node.setdefault(part, {})
        node[key.split(".")[-1]] = yaml.safe_load(value)
    return overrides
