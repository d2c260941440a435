"""Training groups (issue 13, deliverable 2, train): no identical model is trained twice.

Rows that differ only in ``eval`` (and label/paper/group/seeds) share one training run per seed
(polysent.experiments.training_key / training_groups); one `train` job per group trains all its seeds
in one process (run_group) and its run folders are byte-identical to one run_experiment each;
editing one experiment re-runs only its group, editing a label re-runs no training.
"""

from __future__ import annotations

import copy
import json

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import REPO, SCHEMA_DIR, copy_finished_run, describe_jobs, planned_jobs, snakemake
from polysent.config import deep_merge, validate_config
from polysent.experiments import (
    group_of,
    group_seeds,
    group_store_inputs,
    group_work,
    resolve_group,
    store_inputs,
    training_groups,
    training_key,
)
from polysent.runfiles import RUN_FILES
from polysent.train import run_experiment, run_group
from test_train import TRAIN, stores  # noqa: F401 (fixture)

TINY = ("--configfile", "config/tiny.yaml")
BASE = {
    "model": "mctn",
    "variation": {"modalities": ["text", "acoustic"]},
    "train": {"fr": 1.0},
    "eval": "fr",
    "drop_neutral": True,
    "label": "MCTN",
    "paper": {"r": 0.3, "mae": 0.5},
    "group": "Baselines",
    "seeds": [1, 2, 3],
}


pytestmark = pytest.mark.usefixtures("restore_torch_state")


# --- the training key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value", [("eval", "es"), ("label", "other"), ("paper", None), ("group", "NCE Loss"), ("seeds", [7])]
)
def test_eval_and_presentation_keys_do_not_count(key, value):
    assert training_key({**BASE, key: value}) == training_key(BASE)


@pytest.mark.parametrize(
    "key, value",
    [
        ("model", "multilogue"),
        ("variation", {"modalities": ["text"]}),
        ("train", {"fr": 1.0, "es": 1.0}),
        ("train", {"fr": {"count": 30}}),
        ("drop_neutral", False),
        ("transaug", True),
        ("nce", ["cross_tv"]),
        ("task", "emotion"),
        ("emotions", ["happiness"]),
        ("pos_weight", True),
        ("train_overrides", {"max_epochs": 2}),
    ],
)
def test_training_relevant_keys_count(key, value):
    assert training_key({**BASE, key: value}) != training_key(BASE)


def test_training_key_ignores_key_order_and_spelled_out_defaults():
    reordered = dict(reversed(list(BASE.items())))
    reordered["train"] = {"fr": 1.0}
    assert training_key(reordered) == training_key(BASE)
    two = {**BASE, "train": {"fr": 1.0, "es": 1.0}}
    assert training_key(two) == training_key({**BASE, "train": {"es": 1.0, "fr": 1.0}})
    bare = {"model": "mult", "train": {"fr": 1.0}, "eval": "fr"}
    spelled = {
        **bare,
        "variation": {},
        "nce": [],
        "task": "sentiment",
        "transaug": False,
        "drop_neutral": False,
        "train_overrides": {},
        "pos_weight": False,
        "emotions": [],
    }
    assert training_key(bare) == training_key(spelled)


def _matrix() -> dict:
    config = deep_merge(
        yaml.safe_load((REPO / "config" / "config.yaml").read_text()),
        yaml.safe_load((REPO / "config" / "experiments.yaml").read_text()),
    )
    return validate_config(config, SCHEMA_DIR)


def test_groups_of_the_experiment_matrix_pair_rows_that_differ_only_in_eval():
    experiments = _matrix()["experiments"]
    names = list(experiments)
    groups = training_groups(experiments, names, lambda e: e["seeds"])
    by_member = {name: gid for gid, g in groups.items() for name in g["members"]}
    assert set(by_member) == set(names)
    for a, b in [
        ("multilogue_fr_fr", "multilogue_fr_es"),
        ("multilogue_fres_fr", "multilogue_fres_es"),
        ("nce_cross_tv_fr", "nce_cross_tv_es"),
        ("adamml_dl2_fr_fr", "adamml_dl2_fr_es"),
        ("multilogue_transaug_fr", "multilogue_transaug_es"),
        ("multilogue2s_cross_tv_fr", "multilogue2s_cross_tv_es"),
    ]:
        assert by_member[a] == by_member[b], (a, b)
    for a, b in [
        ("adamml_dl2_fr_es", "adamml_dl2_es_es"),
        ("adamml_dl2_fr_es", "adamml_dl2_fr13es_es"),
        ("nce_cross_tv_fr", "nce_inter_tv_fr"),
        ("emotions_mctn_fr", "emotions_mctn_posweight_fr"),
        ("multilogue_fr_fr", "nce_cross_tv_fr"),
        ("multilogue_transaug_fr", "nce_cross_tv_fr"),  # the control differs only in having no NCE
        ("multilogue_transaug_fr", "multilogue_fr_fr"),
        ("multilogue2s_cross_tv_fr", "nce_cross_tv_fr"),
    ]:
        assert by_member[a] != by_member[b], (a, b)
    # every member of a group really differs only in eval and presentation keys
    for group in groups.values():
        assert len({training_key(experiments[n]) for n in group["members"]}) == 1
    # config order does not matter: same ids, members, seeds
    shuffled = dict(reversed(list(experiments.items())))
    assert training_groups(shuffled, list(reversed(names)), lambda e: e["seeds"]) == groups
    runs = sum(len(s) for g in groups.values() for s in g["members"].values())
    trainings = sum(len(group_seeds(g)) for g in groups.values())
    assert trainings < runs


def test_seeds_union_and_single_run_groups():
    experiments = {
        "a_fr": {**BASE, "seeds": [1, 2]},
        "a_es": {**BASE, "eval": "es", "seeds": [2, 3]},
        "b.x": {**BASE, "model": "mult"},
    }
    groups = training_groups(experiments, ["a_fr", "a_es"], lambda e: e["seeds"])
    assert list(groups) == ["a_es"] and groups["a_es"]["members"] == {"a_es": [2, 3], "a_fr": [1, 2]}
    assert group_seeds(groups["a_es"]) == [1, 2, 3]
    assert group_of(groups, "a_fr", 2) == "a_es"
    assert group_of(groups, "a_fr", 3) == "a_fr.seed3"  # a seed outside the report: a group of one
    assert resolve_group(groups, experiments, "a_fr.seed3")["members"] == {"a_fr": [3]}
    assert resolve_group(groups, experiments, "b.x.seed4")["members"] == {"b.x": [4]}
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        resolve_group(groups, experiments, "nope.seed1")
    with pytest.raises(ValueError, match="unknown training group 'zzz'"):
        resolve_group(groups, experiments, "zzz")


def test_group_work_orders_the_groups_by_seeds_data_modalities_and_model():
    """Rule train's priority: an estimate, but monotone in what costs (seeds, data, TransAug,
    modalities, the model's weight), and on the demo's matrix the costliest trainings first."""

    def work(seeds=(1, 2, 3), **change):
        entry = {**BASE, **change, "seeds": list(seeds)}
        return group_work(training_groups({"x": entry}, ["x"], lambda e: e["seeds"])["x"])

    two_modalities = work()
    assert work(seeds=range(1, 11)) == pytest.approx(two_modalities * 10 / 3)
    assert work(variation={"modalities": ["text", "acoustic", "visual"]}) == pytest.approx(two_modalities * 1.5)
    assert work(train={"fr": 1.0, "es": 1.0}) == pytest.approx(two_modalities * 2)
    assert work(train={"fr": 1.0}, transaug=True) == pytest.approx(two_modalities * 2)
    assert two_modalities < work(train={"fr": 1.0, "es": {"count": 230}}) < work(train={"fr": 1.0, "es": 1.0})
    assert work(train={"fr": 1.0, "es": {"count": 3, "unit": "videos"}}) > work(train={"fr": 1.0, "es": {"count": 3}})
    assert (
        work(model="mult") > two_modalities > work(model="adamml_clstm", variation={"modalities": ["text", "acoustic"]})
    )
    # the demo's matrix: its two longest trainings (MulT T+V+A; the 10-seed few-shot AdaMML row)
    # rank above every Multilogue-Net and AdaMML group of 3 seeds
    experiments = _matrix()["experiments"]
    groups = training_groups(experiments, list(experiments), lambda e: e["seeds"])
    ranked = sorted(groups, key=lambda g: -group_work(groups[g]))
    for long in ("mult_tva_fr_fr", "adamml_dl2_fr13es_es"):
        for short in ("adamml_fr_fr", "adamml_dropfusion_fr_fr", "multilogue_fr_es", "adamml_dl2_fr1es_es"):
            assert ranked.index(long) < ranked.index(short), (long, short, ranked)


# --- one process per group, byte-identical run folders ------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"model": "adamml_clstm", "variation": {"decision_loss": True, "target": 2}, "train": {"fr": 1.0}},
        {"model": "multilogue", "nce": ["cross_tv"], "transaug": True, "train": {"fr": 1.0, "es": {"count": 6}}},
        {"model": "multilogue", "variation": {"second_text": "es"}, "nce": ["cross_tv"], "train": {"fr": 1.0}},
    ],
    ids=["adamml", "multilogue_nce_fewshot", "multilogue_two_stream"],
)
def test_group_run_folders_are_byte_identical_to_single_runs(stores, tmp_path, entry):
    members = {"x_fr": {**entry, "eval": "fr", "label": "FR"}, "x_es": {**entry, "eval": "es", "label": "ES"}}
    runs = [{"experiment": "x_fr", "seed": 1}, {"experiment": "x_es", "seed": 1}, {"experiment": "x_es", "seed": 2}]
    for r in runs:
        r["out_dir"] = str(tmp_path / "group" / r["experiment"] / f"seed{r['seed']}")
    trained = []
    import polysent.train as train_module

    original = train_module.train_model

    def counting(*args, **kwargs):
        trained.append(args[5])  # the seed
        return original(*args, **kwargs)

    train_module.train_model = counting
    try:
        # each member as its own objects, as Snakemake's params and JSON give them
        run_group(stores, {n: json.loads(json.dumps(e)) for n, e in members.items()}, TRAIN, runs)
    finally:
        train_module.train_model = original
    assert sorted(trained) == [1, 2], "each seed of the group is trained exactly once"
    for r in runs:
        single = tmp_path / "single" / r["experiment"] / f"seed{r['seed']}"
        run_experiment(
            stores, copy.deepcopy(members[r["experiment"]]), TRAIN, r["seed"], single, exp_name=r["experiment"]
        )
        for name in RUN_FILES:
            grouped = (tmp_path / "group" / r["experiment"] / f"seed{r['seed']}" / name).read_bytes()
            assert grouped == (single / name).read_bytes(), f"{r['experiment']} seed {r['seed']}: {name} differs"
    fr = tmp_path / "group" / "x_fr" / "seed1" / "predictions.parquet"
    es = tmp_path / "group" / "x_es" / "seed1" / "predictions.parquet"
    test_langs = {p: set(pq.read_table(p).to_pandas().query("split == 'test'")["lang"]) for p in (fr, es)}
    assert test_langs == {fr: {"fr"}, es: {"es"}}  # each member is evaluated on its own language


def test_run_group_refuses_members_that_train_differently(stores, tmp_path):
    members = {"a": {**BASE, "seeds": [1]}, "b": {**BASE, "drop_neutral": False, "eval": "es"}}
    with pytest.raises(ValueError, match="do not share their training-relevant keys"):
        run_group(stores, members, TRAIN, [{"experiment": "a", "seed": 1, "out_dir": str(tmp_path / "a")}])


# --- the workflow: one job per group, edits re-run only their group ----------------------------

WORKFLOW = pytest.mark.workflow


@pytest.fixture
def done_copy(tiny_run, tmp_path):
    return copy_finished_run(tiny_run, tmp_path / "wf")


def _plan(workdir, tmp_path, overlay: dict):
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return planned_jobs(workdir, *TINY, str(path))


def _tiny_report() -> dict:
    return yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())["report"]


@WORKFLOW
def test_tiny_run_trains_one_job_per_group(tiny_run):
    runs = sorted((tiny_run / "results" / "runs").glob("*/seed*/metrics.json"))
    groups = sorted(p.stem for p in (tiny_run / "benchmarks" / "train").glob("*.tsv"))
    report = _tiny_report()
    assert len(runs) == len(report["seeds"]) * (len(report["table1"]) + len(report["emotions"]))
    assert groups == sorted(report["table1"] + report["emotions"])  # no two tiny rows train alike
    for path in runs:  # the published folder is the group's (a link or a copy of the same bytes)
        exp, seed = path.parent.parent.name, path.parent.name
        source = tiny_run / "results" / "train_groups" / exp / exp / seed / "metrics.json"
        assert source.read_bytes() == path.read_bytes()


@WORKFLOW
def test_training_jobs_are_ordered_by_their_work_and_run_folders_linked_first(done_copy):
    jobs = planned_jobs(done_copy, *TINY, "--forcerun", "train")
    train = {j.wildcards.removeprefix("group="): j.priority for j in jobs.values() if j.rule == "train"}
    config = validate_config(
        deep_merge(
            deep_merge(
                yaml.safe_load((REPO / "config" / "config.yaml").read_text()),
                yaml.safe_load((REPO / "config" / "experiments.yaml").read_text()),
            ),
            yaml.safe_load((REPO / "config" / "tiny.yaml").read_text()),
        ),
        SCHEMA_DIR,
    )
    report = config["report"]
    groups = training_groups(config["experiments"], report["table1"] + report["emotions"], lambda e: report["seeds"])
    assert train and train == {gid: group_work(group) for gid, group in groups.items()}
    assert len(set(train.values())) > 1  # the tiny matrix does rank its groups
    links = [j.priority for j in jobs.values() if j.rule == "train_run"]
    assert links and min(links) > max(train.values())


@WORKFLOW
def test_editing_a_label_retrains_nothing(done_copy, tmp_path):
    jobs = _plan(done_copy, tmp_path, {"experiments": {"adamml_dl2_fr_es": {"label": "renamed row"}}})
    training = [j for j in jobs.values() if j.rule.startswith("train")]
    assert not training, f"a label edit re-ran training:\n{describe_jobs(jobs)}"
    assert {j.rule for j in jobs.values()} <= {
        "all",
        "report_table1",
        "report_table2",
        "report_emotions",
        "report_learning_curves",
        "report_scatter",
        "report_modality_utilisation",
        "report_label_distribution",
    }


@WORKFLOW
def test_editing_one_experiment_reruns_only_its_group(done_copy, tmp_path):
    jobs = _plan(done_copy, tmp_path, {"experiments": {"mult_a_fr_fr": {"train_overrides": {"max_epochs": 2}}}})
    train = sorted(j.wildcards for j in jobs.values() if j.rule == "train")
    published = sorted(j.wildcards for j in jobs.values() if j.rule == "train_run")
    assert train == ["group=mult_a_fr_fr"], describe_jobs(jobs)
    seeds = _tiny_report()["seeds"]
    assert published == sorted(f"exp=mult_a_fr_fr, seed={s}" for s in seeds), describe_jobs(jobs)
    assert {j.rule for j in jobs.values()} - {"train", "train_run"} <= {
        "all",
        "report_table1",
        "report_learning_curves",
        "report_scatter",
        "report_modality_utilisation",
    }


@WORKFLOW
def test_rows_differing_only_in_eval_share_one_job(done_copy, tmp_path):
    """Reporting adamml_dl2_fr_fr next to adamml_dl2_fr_es (same training): one job trains both."""
    report = _tiny_report()
    overlay = {
        "report": {**report, "table1": report["table1"] + ["adamml_dl2_fr_fr"]},
        "experiments": {"adamml_dl2_fr_fr": {"drop_neutral": False}},
    }
    jobs = _plan(done_copy, tmp_path, overlay)
    train = [j for j in jobs.values() if j.rule == "train"]
    assert [j.wildcards for j in train] == ["group=adamml_dl2_fr_es"], describe_jobs(jobs)
    published = sorted(j.wildcards for j in jobs.values() if j.rule == "train_run")
    expected = [f"exp={e}, seed={s}" for e in ("adamml_dl2_fr_es", "adamml_dl2_fr_fr") for s in report["seeds"]]
    assert published == sorted(expected), describe_jobs(jobs)


def test_a_text_encoder_ablation_reads_its_own_stores_and_trains_apart():
    row = {**BASE, "train": {"fr": 1.0}, "eval": "es"}
    ablation = {**row, "text_encoder": "hash"}
    exps = {"row": row, "row_hash": ablation}
    assert store_inputs(exps, "row") == {"store_es": "results/store/es.parquet", "store_fr": "results/store/fr.parquet"}
    assert store_inputs(exps, "row_hash") == {
        "store_es": "results/ablation/text_hash/store/es.parquet",
        "store_fr": "results/ablation/text_hash/store/fr.parquet",
    }
    assert training_key(row) != training_key(ablation)  # the same row on other text: its own group
    groups = training_groups(exps, ["row", "row_hash"], lambda e: [1])
    assert len(groups) == 2
    assert group_store_inputs(exps, groups["row_hash"]) == store_inputs(exps, "row_hash")
    config = {"languages": ["fr", "es"], "experiments": {"x": {**ablation, "text_encoder": "glove"}}}
    with pytest.raises(Exception, match="glove"):
        validate_config(config, SCHEMA_DIR)


@WORKFLOW
def test_an_ablation_row_builds_hash_stores_beside_the_default_and_retrains_nothing_else(done_copy, tmp_path):
    """config/ablation_text.yaml's mechanism on the tiny run: one more row with `text_encoder: hash`."""
    report = _tiny_report()
    entry = yaml.safe_load((REPO / "config" / "ablation_text.yaml").read_text())["experiments"]["mult_t_fr_fr_hash"]
    overlay = {
        "report": {**report, "table1": report["table1"] + ["mult_t_fr_fr_hash"]},
        "experiments": {"mult_t_fr_fr_hash": entry},
    }
    jobs = _plan(done_copy, tmp_path, overlay)
    train = [j.wildcards for j in jobs.values() if j.rule == "train"]
    assert train == ["group=mult_t_fr_fr_hash"], describe_jobs(jobs)
    ablation = sorted((j.rule, j.wildcards) for j in jobs.values() if j.rule.endswith("_ablation"))
    # an ablated encoder's text and stores are built for every language, so its QC joins the summary
    assert ablation == [
        ("store_ablation", "encoder=hash, lang=es"),
        ("store_ablation", "encoder=hash, lang=fr"),
        ("text_ablation", "encoder=hash, lang=es"),
        ("text_ablation", "encoder=hash, lang=fr"),
    ], describe_jobs(jobs)
    assert "results/ablation/text_hash/qc/store/es.parquet" in jobs[("qc_summary", "")].reason
    assert not {j.rule for j in jobs.values()} & {"text", "store", "media", "visual", "acoustic", "align_aeneas"}
    # built for real: the ablation store's text is the stand-in, the default store's is untouched
    default = done_copy / "results" / "store" / "fr.parquet"
    before = default.read_bytes()
    target = "results/ablation/text_hash/store/fr.parquet"
    snakemake(done_copy, target, "--cores", "2", *TINY, str(tmp_path / "overlay.yaml"))
    meta = lambda p: json.loads(pq.read_schema(p).metadata[b"polysent"])  # noqa: E731
    hashed = meta(done_copy / "results" / "ablation" / "text_hash" / "store" / "fr.parquet")
    assert hashed["text_encoder"]["encoder"] == "hash" and hashed["dims"]["text"] == 300
    assert meta(default)["text_encoder"]["encoder"] == "use" and default.read_bytes() == before
    assert (done_copy / "results" / "ablation" / "text_hash" / "qc" / "store" / "fr.parquet").is_file()
