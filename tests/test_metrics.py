"""Metrics against values computed by hand on small arrays."""

import math

import numpy as np
import pytest

from polysent.jsonclean import json_clean
from polysent.metrics import emotion_metrics, sentiment_metrics, weighted_f1


def test_sentiment_metrics_hand_computed():
    truth = np.array([-2.0, 0.0, 0.0, 1.0, 2.6, -0.4])
    pred = np.array([-1.0, 0.3, -0.2, 0.5, 2.5, 0.4])
    m = sentiment_metrics(pred, truth)
    assert m["n"] == 6
    assert m["mae"] == pytest.approx((1 + 0.3 + 0.2 + 0.5 + 0.1 + 0.8) / 6)
    assert m["corr"] == pytest.approx(np.corrcoef(pred, truth)[0, 1])
    # has-zero: truth >= 0 -> [F, T, T, T, T, F]; pred >= 0 -> [F, T, F, T, T, T] -> 4/6
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # non-zero: drop the two zero labels; truth > 0 -> [F, T, T, F]; pred > 0 -> [F, T, T, T] -> 3/4
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    # weighted F1 of the non-zero subset: class T (support 2): P=2/3 R=1 F=0.8;
    # class F (support 2): P=1 R=0.5 F=2/3 -> (2*0.8 + 2*2/3)/4
    assert m["f1_non0"] == pytest.approx((2 * 0.8 + 2 * (2 / 3)) / 4)
    # acc7: round(clip(pred)) = [-1, 0, -0, 0, 2, 0]; round(clip(truth)) = [-2, 0, 0, 1, 3, -0] -> 3/6
    assert m["acc7"] == pytest.approx(3 / 6)
    # acc5 clips both to [-2, 2]: truth 2.6 -> 2 and pred 2.5 -> 2 (half to even) -> 4/6
    assert m["acc5"] == pytest.approx(4 / 6)


def test_rounding_half_to_even_and_clipping_both_sides():
    # 0.5 -> 0 and 2.5 -> 2 (numpy rounds halves to even), 1.5 -> 2
    truth = np.array([0.0, 2.0, 2.0, 3.0])
    pred = np.array([0.5, 2.5, 1.5, 9.0])  # 9 clipped to 3
    m = sentiment_metrics(pred, truth)
    assert m["acc7"] == 1.0
    m = sentiment_metrics(np.array([-0.5, 3.5]), np.array([0.0, 2.0]))  # -0.5 -> -0 == 0; 3.5 -> 2 (acc5)
    assert m["acc5"] == 1.0
    assert m["acc7"] == 0.5


def test_acc2_conventions_differ_on_zero_labels():
    truth = np.array([0.0, 0.0, 1.0, -1.0])
    pred = np.array([0.0, -0.1, 0.2, -0.3])
    m = sentiment_metrics(pred, truth)
    # has-zero: label 0 is positive; pred 0.0 >= 0 counts positive, -0.1 negative -> 3/4
    assert m["acc2_has0"] == pytest.approx(3 / 4)
    # non-zero: only the two non-zero labels, both right
    assert m["acc2_non0"] == 1.0 and m["f1_non0"] == 1.0


def test_weighted_f1_matches_definition_with_imbalance():
    truth = np.array([1, 1, 1, 0], bool)
    pred = np.array([1, 0, 1, 1], bool)
    # positive: P=2/3, R=2/3, F=2/3 (support 3); negative: P=0, R=0, F=0 (support 1)
    assert weighted_f1(pred, truth) == pytest.approx(3 / 4 * 2 / 3)


def test_constant_prediction_gives_nan_corr_and_strict_json():
    m = sentiment_metrics(np.zeros(4), np.array([1.0, -1.0, 2.0, 0.0]))
    assert math.isnan(m["corr"])
    assert json_clean(m)["corr"] is None


def test_emotion_metrics_per_label():
    prob = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.1], [0.5, 0.49]])
    truth = np.array([[1, 0], [0, 1], [1, 0], [1, 1]])
    m = emotion_metrics(prob, truth, ["happiness", "sadness"])
    h = m["per_label"]["happiness"]  # pred (>= .5): 1,1,0,1 vs 1,0,1,1 -> tp 2 fp 1 fn 1
    assert (h["precision"], h["recall"], h["f1"], h["n_pos"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3, 3))
    s = m["per_label"]["sadness"]  # pred 0,1,0,0 vs 0,1,0,1 -> tp 1 fp 0 fn 1
    assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert m["macro_f1"] == pytest.approx(2 / 3) and m["n"] == 4


def test_all_negative_predictions_have_zero_f1_not_error():
    m = emotion_metrics(np.zeros((3, 1)), np.array([[1], [0], [0]]), ["anger"])
    assert m["per_label"]["anger"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n_pos": 1}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        sentiment_metrics(np.zeros(3), np.zeros(4))


def test_metrics_agree_with_scikit_learn_and_scipy_on_random_cases():
    """The hand-written metrics against the reference implementations (scikit-learn's weighted F1
    and precision/recall, scipy's Pearson r), on random splits with ties, zeros and imbalance."""
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score, mean_absolute_error, precision_recall_fscore_support

    rng = np.random.default_rng(21)
    for case in range(200):
        n = int(rng.integers(3, 120))
        truth = np.round(rng.uniform(-3, 3, n) * 3) / 3
        truth[rng.random(n) < 0.2] = 0.0
        pred = rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 2), n)
        if case % 7 == 0:
            pred = np.abs(pred)  # one predicted class only: sklearn's zero_division=0 case
        got = sentiment_metrics(pred, truth)
        assert got["mae"] == pytest.approx(mean_absolute_error(truth, pred), rel=1e-12)
        if np.std(truth) > 0:
            assert got["corr"] == pytest.approx(pearsonr(pred, truth).statistic, rel=1e-9, abs=1e-12)
        assert got["f1_has0"] == pytest.approx(
            f1_score(truth >= 0, pred >= 0, average="weighted", zero_division=0), rel=1e-12
        )
        nz = truth != 0
        if nz.any():
            assert got["f1_non0"] == pytest.approx(
                f1_score(truth[nz] > 0, pred[nz] > 0, average="weighted", zero_division=0), rel=1e-12
            )
    for _ in range(50):
        n, k = int(rng.integers(1, 80)), 3
        truth = (rng.random((n, k)) < rng.uniform(0.05, 0.6)).astype(float)
        prob = rng.random((n, k))
        got = emotion_metrics(prob, truth, ["a", "b", "c"])
        p, r, f, _ = precision_recall_fscore_support(
            truth, prob >= 0.5, average=None, zero_division=0, labels=[0, 1, 2]
        )
        for j, label in enumerate("abc"):
            assert (got["per_label"][label]["precision"], got["per_label"][label]["recall"]) == pytest.approx(
                (p[j], r[j])
            )
            assert got["per_label"][label]["f1"] == pytest.approx(f[j])
