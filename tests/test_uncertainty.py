"""The extrapolation grade separates structures like the training set from structures unlike it."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

from sus2_model.demo import emt_dataset, fitted_emt_model
from sus2_model.uncertainty import ExtrapolationGrade


def test_grade_is_low_inside_and_high_outside_the_training_set():
    model = fitted_emt_model(n_train=24)
    grade = ExtrapolationGrade(model, emt_dataset(40, seed=0))
    inside = grade(emt_dataset(10, seed=7))
    squeezed = bulk("Cu", "fcc", a=3.0, cubic=True)  # 17 % compressed: never seen
    surface = bulk("Cu", "fcc", a=3.61, cubic=True) * (1, 1, 3)
    surface.center(vacuum=6.0, axis=2)
    outside = grade([squeezed, surface])
    assert np.median(inside) < 3.0
    assert outside.min() > 5 * np.median(inside)
