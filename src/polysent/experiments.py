"""Experiment entries and training groups: which runs train the same model (no torch here).

An experiment entry (``config/experiments.yaml``) names a model, its variation and the data
(train/eval languages, few-shot subsets, TransAug, task). Rows that differ only in ``eval`` (and
label/paper/group/seeds) train the same model: :func:`training_key` is the canonical form of the
keys that matter, :func:`training_groups` groups experiments by it, and the workflow's rule
``train`` runs one group per job (:func:`polysent.train.run_group`). This module is pure config
logic, so the workflow imports it at DAG build without torch.
"""

from __future__ import annotations

import copy
import json

from polysent import modelfacts
from polysent.config import complete

# Keys of an experiment entry that never change what a run trains or writes: the report's
# presentation (label, paper, group) and the seed list (each run has one seed).
PRESENTATION = ("label", "paper", "group", "seeds")
# ... and those that change only the evaluation: rows differing only in these share a training run.
NOT_TRAINING = PRESENTATION + ("eval",)

STORE = "results/store/{lang}.parquet"
# The store of a text-encoder ablation (an entry's `text_encoder`), built by rules text_ablation
# and store_ablation from the same features with only the text stage's encoder changed.
ABLATION_STORE = "results/ablation/text_{encoder}/store/{lang}.parquet"


def run_entry(exp: dict) -> dict:
    """The part of an experiment entry a run folder depends on (its rule params, its model.json)."""
    return {k: v for k, v in exp.items() if k not in PRESENTATION}


def _with_entry_defaults(exp: dict) -> dict:
    """``exp`` with the experiments schema's defaults filled, so that an omitted key and its
    default spelled out give the same training key."""
    return complete({"x": copy.deepcopy(exp)}, "experiments")["x"]


def training_key(exp: dict) -> str:
    """Canonical JSON of the training-relevant keys of an experiment entry (schema defaults filled).

    Everything but :data:`NOT_TRAINING` counts (model, variation, nce, train, transaug,
    drop_neutral, task, emotions, pos_weight, train_overrides and any key added later), so a new
    key can only split groups, never merge two different trainings. Key order does not matter.
    """
    full = _with_entry_defaults(exp)
    return json.dumps(
        {k: v for k, v in full.items() if k not in NOT_TRAINING}, sort_keys=True, separators=(",", ":"), default=str
    )


def training_groups(experiments: dict, names, seeds_of) -> dict[str, dict]:
    """Experiments ``names`` grouped by :func:`training_key`: one training run per group and seed.

    Returns ``{group_id: {"key": key, "members": {name: [seeds]}}}``; ``seeds_of(entry)`` gives an
    experiment's seeds. The id is the group's first member name (sorted), made a valid rule-name
    suffix; ids, members and seeds are sorted, so the result does not depend on config order.
    """
    by_key: dict[str, dict[str, list[int]]] = {}
    for name in sorted(set(names)):
        entry = experiment_entry(experiments, name)
        by_key.setdefault(training_key(entry), {})[name] = sorted({int(s) for s in seeds_of(entry)})
    groups: dict[str, dict] = {}
    for key, members in sorted(by_key.items(), key=lambda kv: min(kv[1])):
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in min(members))
        gid, n = base, 1
        while gid in groups:  # two names that differ only in '.', '+' or '-'
            n += 1
            gid = f"{base}_{n}"
        groups[gid] = {"key": key, "members": members}
    return groups


SINGLE_RUN = ".seed"  # "{exp}.seed{seed}": the group of one run outside every reported group


def group_of(groups: dict, name: str, seed: int) -> str:
    """The id of the training group that writes run folder (``name``, ``seed``).

    A run of a reported group belongs to it; any other run is a group of one, ``"{exp}.seed{seed}"``
    (reported ids hold no '.', see :func:`training_groups`).
    """
    for gid, group in groups.items():
        if seed in group["members"].get(name, ()):
            return gid
    return f"{name}{SINGLE_RUN}{int(seed)}"


def resolve_group(groups: dict, experiments: dict | None, gid: str) -> dict:
    """The group ``gid``: one of ``groups`` or a group of one run named by :func:`group_of`."""
    if gid in groups:
        return groups[gid]
    name, sep, seed = gid.rpartition(SINGLE_RUN)
    if not sep or not seed.isdigit():
        raise ValueError(
            f"unknown training group '{gid}' (results/train_groups/{gid}); reported groups: "
            f"{', '.join(sorted(groups)) or '(none)'}; a single run is '<experiment>.seed<N>'"
        )
    entry = experiment_entry(experiments, name)
    return {"key": training_key(entry), "members": {name: [int(seed)]}}


def group_seeds(group: dict) -> list[int]:
    """Every seed some member of ``group`` runs with (each is trained once)."""
    return sorted({s for seeds in group["members"].values() for s in seeds})


# What a few-shot subset given as a count is worth in group_work: the demo's languages have
# ~400-700 training segments, so 500 segments ~ one whole training split (an estimate, no store read).
_SEGMENTS_PER_SPLIT = 500
_SEGMENTS_PER_VIDEO = 8


def group_work(group: dict) -> float:
    """Estimated CPU-seconds of training ``group``, to start the longest training jobs first.

    seeds x training data x modalities read x the model's ``schedule_weight`` (demo CPU-seconds
    of one seed per modality on a whole training split), where training data is the sum of the
    training languages' shares (a count of segments or videos converted at ~500 segments a
    split), doubled by TransAug. Rule ``train`` takes it as its ``priority``: with equal
    priorities Snakemake started the groups in an arbitrary order, and on 2 cores a 47-s group
    started last left the other core idle for 35 s (docs/BENCHMARKS.md, "Training jobs longest
    first"). It orders jobs only; a poor estimate costs packing, never a result. Reads the
    group's training key and the model's source (no torch, no store).
    """
    key = json.loads(group["key"])
    data = 0.0
    for share in key["train"].values():
        if not isinstance(share, dict):
            data += float(share)
        elif share.get("count") is not None:
            per_unit = _SEGMENTS_PER_VIDEO if share.get("unit") == "videos" else 1
            data += min(1.0, share["count"] * per_unit / _SEGMENTS_PER_SPLIT)
        else:
            data += float(share["fraction"])
    if key.get("transaug"):
        data *= 2
    modalities = len((key.get("variation") or {}).get("modalities") or ("text", "visual", "acoustic"))
    weight = float(modelfacts.class_attribute(key["model"], "schedule_weight"))
    return round(len(group_seeds(group)) * data * modalities * weight, 1)


def group_runs(group: dict, group_dir: str) -> list[dict]:
    """One ``{experiment, seed, out_dir}`` per run folder of ``group``, under ``group_dir`` (rule params)."""
    return [
        {"experiment": name, "seed": seed, "out_dir": f"{group_dir}/{name}/seed{seed}"}
        for name, seeds in group["members"].items()
        for seed in seeds
    ]


def group_store_inputs(experiments: dict, group: dict, pattern: str = STORE) -> dict:
    """``store_<lang>`` -> store path for every language a member of ``group`` trains or evaluates on."""
    out: dict[str, str] = {}
    for name in group["members"]:
        out.update(store_inputs(experiments, name, pattern))
    return dict(sorted(out.items()))


def experiment_entry(experiments: dict | None, name: str) -> dict:
    """The config entry of experiment ``name``; a typo in a target path gets the list of names."""
    experiments = experiments or {}
    if name not in experiments:
        raise ValueError(
            f"unknown experiment '{name}' in results/runs/{name}/...; "
            f"defined in config['experiments']: {', '.join(sorted(experiments)) or '(none)'}"
        )
    entry = experiments[name]
    missing = [k for k in ("model", "train", "eval") if k not in (entry or {})]
    if missing:
        raise ValueError(f"experiment '{name}' lacks required key(s) {missing} (config['experiments'])")
    return entry


def store_inputs(experiments: dict | None, name: str, pattern: str = STORE) -> dict:
    """``store_<lang>`` -> feature store path for the training and evaluation languages of ``name``
    (an entry with ``text_encoder`` reads that ablation's stores instead of ``pattern``)."""
    exp = experiment_entry(experiments, name)
    langs = sorted(set(exp["train"]) | {exp["eval"]})
    encoder = exp.get("text_encoder")
    pattern = ABLATION_STORE if encoder else pattern
    return {f"store_{lang}": pattern.format(lang=lang, encoder=encoder) for lang in langs}


TRANSFER_PREFIX = "transfer_"


def transfer_entries(transfer: dict, languages: list[str], taken=()) -> dict[str, dict]:
    """The experiment entries of the transfer matrix (``config["transfer"]``, schema-completed).

    One entry ``transfer_<src>_<tgt>`` per ordered pair of ``transfer.languages`` (null = every
    configured language), diagonal included: trained on the source's whole training split,
    reported on the target's test split. The entries of one source differ only in ``eval``, so
    :func:`training_groups` trains each source once per seed. A language that is not configured,
    or a name already used by an experiment in ``taken``, is an error naming the key.
    """
    langs = list(transfer["languages"] or languages)
    unknown = [lang for lang in langs if lang not in languages]
    if unknown:
        raise ValueError(f"transfer.languages: {', '.join(unknown)} not configured (languages: {', '.join(languages)})")
    entries = {
        f"{TRANSFER_PREFIX}{src}_{tgt}": {
            "label": f"{src.upper()} -> {tgt.upper()}",
            "group": "Transfer matrix",
            "model": transfer["model"],
            "variation": copy.deepcopy(transfer["variation"]),
            "train": {src: 1.0},
            "eval": tgt,
            "drop_neutral": bool(transfer["drop_neutral"]),
            "seeds": [int(s) for s in transfer["seeds"]],
        }
        for src in langs
        for tgt in langs
    }
    clash = sorted(set(entries) & set(taken))
    if clash:
        raise ValueError(
            f"experiments {', '.join(clash)}: the names are the transfer matrix's (transfer.languages); rename them"
        )
    return entries


def add_groups(groups: dict[str, dict], extra: dict[str, dict]) -> None:
    """Add the training groups ``extra`` to ``groups`` in place; an id in both is an error."""
    clash = sorted(set(groups) & set(extra))
    if clash:
        raise ValueError(f"training group id(s) {', '.join(clash)} defined twice (results/train_groups/)")
    groups.update(extra)
