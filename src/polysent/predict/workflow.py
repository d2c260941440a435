"""What the workflow's rule ``predict`` needs at DAG build: a ``predict.<name>`` entry and its inputs."""

from __future__ import annotations

import re

from polysent.predict.common import PredictError

RUN_NAME = re.compile(r"^(?P<exp>[A-Za-z0-9][A-Za-z0-9_.+-]*)/seed(?P<seed>\d+)$")


def bundle_source(bundle: str, experiments: dict | None) -> str:
    """The bundle folder a ``predict.<name>.bundle`` names: a run of the workflow ("{exp}/seed{n}",
    bundled by rule bundle) or a folder path as given."""
    m = RUN_NAME.match(bundle)
    if m and m["exp"] in (experiments or {}):
        return f"results/runs/{m['exp']}/seed{m['seed']}/bundle"
    return bundle


def workflow_entry(config: dict, name: str) -> dict:
    """The (schema-completed) ``predict.<name>`` entry of a workflow config; a missing one is named."""
    entries = config.get("predict") or {}
    if name not in entries:
        raise PredictError(
            f"results/predict/{name}.csv: no predict.{name} entry in the config (configured: {sorted(entries)})"
        )
    return entries[name]


def workflow_inputs(config: dict, name: str) -> dict[str, str]:
    """Rule predict's inputs: ``bundle`` (a run's bundle folder or the given one), ``manifest``/``media``."""
    entry = workflow_entry(config, name)
    found = {"bundle": bundle_source(entry["bundle"], config.get("experiments"))}
    found.update({k: entry[k] for k in ("manifest", "media") if entry.get(k)})
    return found
