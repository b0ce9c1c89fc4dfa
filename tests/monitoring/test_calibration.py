"""Calibration hits its false-alarm rate on drift-free windows it never saw; shifted windows alarm."""

import numpy as np

from apparel.monitoring.calibration import Calibration, calibrate_stream
from apparel.monitoring.detector import Detector
from apparel.monitoring.reference import OVERALL, Reference, build_reference
from tests.monitoring.conftest import monitoring_settings, sample


def alarm_rate(detector: Detector, seed: int, windows: int, size: int, **shift) -> float:
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(windows):
        vectors, stats, _ = sample(rng, size, **shift)
        alarms += detector.score(OVERALL, vectors, stats).alarm
    return alarms / windows


def test_false_alarm_rate_is_the_configured_one_on_unseen_drift_free_windows(reference_data, tmp_path):
    settings = monitoring_settings(tmp_path, false_alarm_rate=0.1, window_sizes=[50], calibration_draws=120,
                                   per_vertical=False)
    detector = Detector(build_reference("1", *reference_data, settings, log=lambda line: None), settings)
    rate = alarm_rate(detector, seed=11, windows=120, size=50)
    assert 0.03 <= rate <= 0.2, rate  # 10 % configured; binomial spread of 120 windows and 120 draws


def test_shifted_embeddings_or_photos_always_alarm(calibrated):
    reference, settings = calibrated
    detector = Detector(reference, settings)
    assert alarm_rate(detector, seed=13, windows=10, size=100, shift=0.6) == 1.0
    assert alarm_rate(detector, seed=14, windows=10, size=100, square=True) == 1.0  # only the photos changed


def test_every_vertical_is_calibrated_and_scored_against_its_own_reference(calibrated):
    reference, settings = calibrated
    assert set(reference.calibration.thresholds) == {OVERALL, "shoes", "tops"}
    rng = np.random.default_rng(15)
    vectors, stats, verticals = sample(rng, 300)
    tops = verticals == "tops"
    result = Detector(reference, settings).score("tops", vectors[tops][:100], stats[tops][:100])
    assert result.size == 100 and not result.alarm
    # shoes scored against the tops reference is drift: the streams really use their own reference
    shoes = ~tops
    assert Detector(reference, settings).score("tops", vectors[shoes][:100], stats[shoes][:100]).alarm


def test_reference_and_calibration_survive_save_and_load(calibrated, tmp_path):
    reference, settings = calibrated
    loaded = Reference.load(reference.save(tmp_path / "ref"))
    assert loaded.calibration.to_dict() == reference.calibration.to_dict()
    assert np.array_equal(loaded.embeddings, reference.embeddings)
    assert list(loaded.verticals) == list(reference.verticals)
    assert isinstance(Calibration.from_dict(reference.calibration.to_dict()), Calibration)


def test_every_calibration_draw_scores_disjoint_parts_of_the_reference_at_live_sizes():
    seen = []

    def score(window, reference):
        seen.append((set(window), set(reference)))
        return {"embedding": float(len(seen))}

    thresholds = calibrate_stream(score, np.arange(500), 200, [50, 200], 30, 0.1, np.random.default_rng(0))
    assert list(thresholds) == [50]  # 500 - 200 leaves no room for two 200-windows
    assert len(seen) == 30 and all(len(w) == 50 and len(r) == 200 and not w & r for w, r in seen)
    assert len({frozenset(r) for _, r in seen}) == 30  # the reference part is re-drawn every time


def test_pca_is_fitted_on_the_reference_and_applied_to_windows(reference_data, tmp_path):
    settings = monitoring_settings(tmp_path, pca_components=8, window_sizes=[50], calibration_draws=40,
                                   per_vertical=False, image_stats=False)
    reference = build_reference("1", *reference_data, settings, log=lambda line: None)
    assert reference.embeddings.shape[1] == 8
    vectors, stats, _ = sample(np.random.default_rng(16), 50, shift=1.0)
    assert Detector(reference, settings).score(OVERALL, vectors, stats).alarm


def test_small_windows_and_uncalibrated_streams_are_not_scored(calibrated):
    reference, settings = calibrated
    vectors, stats, _ = sample(np.random.default_rng(17), 30)
    assert Detector(reference, settings).score(OVERALL, vectors, stats) is None
    assert Detector(reference, settings).score("bags", vectors, stats) is None


def odd_sized(rng: np.random.Generator, size: int, odd: int):
    """A drift-free window in which ``odd`` photos have another size (the reference's sizes never vary)."""
    vectors, stats, _ = sample(rng, size)
    stats[:odd, 0], stats[:odd, 1] = 640.0, 480.0
    stats[:odd, 2] = stats[:odd, 0] / stats[:odd, 1]
    return vectors, stats


def test_a_statistic_constant_in_the_reference_cannot_make_a_hair_trigger(calibrated):
    """Regression (issue 39): its null scale was ~1e-9, so 5 odd photos in 200 alarmed and 20 scored 4e8."""
    reference, settings = calibrated
    detector = Detector(reference, settings)
    few = detector.score(OVERALL, *odd_sized(np.random.default_rng(30), 100, 5))
    assert not few.alarm and few.score < 1, few
    some = detector.score(OVERALL, *odd_sized(np.random.default_rng(31), 100, 20))
    assert some.score < 10, some  # a p-value of 1e-6 or so is a few units, never 1e8
    every = detector.score(OVERALL, *odd_sized(np.random.default_rng(32), 100, 100))
    assert every.alarm and every.score < 1000, every  # bounded: -log10 p stops at 300, scales have floors


def test_a_window_names_the_components_that_fired_with_their_p_values(calibrated):
    reference, settings = calibrated
    detector = Detector(reference, settings)
    square = detector.score(OVERALL, *sample(np.random.default_rng(33), 100, square=True)[:2])
    assert square.alarm and set(square.fired) <= {"width", "height", "aspect"} and square.fired
    assert all(square.p_values[k] < settings.false_alarm_rate for k in square.fired)
    shifted = detector.score(OVERALL, *sample(np.random.default_rng(34), 100, shift=0.6)[:2])
    assert shifted.fired[0] == "embedding" and shifted.p_values["embedding"] <= 1 / 60  # beyond all 60 null draws
    calm = detector.score(OVERALL, *sample(np.random.default_rng(35), 100)[:2])
    assert calm.fired == [] and calm.threshold == 1.0 and 0 < min(calm.p_values.values()) <= 1


def test_a_window_larger_than_its_calibrated_size_is_scored_at_that_size(calibrated):
    """Regression (issue 39): windows of 200 were judged, silently, against the threshold for 50."""
    reference, settings = calibrated
    result = Detector(reference, settings).score(OVERALL, *sample(np.random.default_rng(36), 130)[:2])
    assert result.size == 100


def test_a_calibration_draw_never_splits_a_product():
    from apparel.monitoring.calibration import draw

    products = np.repeat(np.arange(100), 4).astype(str)  # 100 products, 4 views each
    for seed in range(20):
        window, reference = draw(np.arange(400), products, 150, 60, np.random.default_rng(seed))
        assert len(window) == 60 and len(reference) == 150
        assert not set(products[window]) & set(products[reference])


def catalog_of_views(rng: np.random.Generator, products: int, views: int) -> tuple[np.ndarray, ...]:
    """Each product's views close together (as a trained model embeds them), products spread out."""
    centres = rng.normal(size=(products, 16))
    vectors = np.repeat(centres, views, axis=0) + 0.3 * rng.normal(size=(products * views, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stats = np.c_[np.full((products * views, 3), [128.0, 128.0, 1.0]), rng.uniform(0.4, 0.8, (products * views, 2))]
    return vectors.astype(np.float32), stats, np.full(products * views, "tops"), np.repeat(np.arange(products), views)


def test_new_products_do_not_alarm_when_calibration_keeps_products_whole(tmp_path):
    """Regression (issue 39, found running `apparel run loop`): draws that split a product's views across
    window and reference made the null too narrow, and traffic of new products alarmed."""
    settings = monitoring_settings(tmp_path, window_sizes=[50], window_size=50, calibration_draws=100,
                                   per_vertical=False, false_alarm_rate=0.05)
    vectors, stats, verticals, products = catalog_of_views(np.random.default_rng(50), 150, 4)
    new = catalog_of_views(np.random.default_rng(51), 800, 1)  # traffic: 800 products never seen
    null_median, rates = {}, {}
    for grouped in (False, True):
        reference = build_reference("1", vectors, stats, verticals, settings, log=lambda line: None,
                                    products=products if grouped else None)
        null_median[grouped] = np.median(reference.calibration.thresholds[OVERALL][50].null["embedding"])
        detector = Detector(reference, settings)
        rates[grouped] = np.mean([detector.score(OVERALL, new[0][i:i + 50], new[1][i:i + 50]).alarm
                                  for i in range(0, 800, 50)])
    assert null_median[True] > 1.5 * null_median[False], null_median  # split products look alike: too narrow
    assert rates[True] <= 0.125, rates  # 5 % configured, 16 windows
