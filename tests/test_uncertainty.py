"""The extrapolation grade separates structures like the training set from structures unlike it."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_selection_takes_the_first_uncertain_frame_of_each_trajectory():
    """Frames after a trajectory's first uncertain one are never picked (they were reached with untrusted forces);
    other trajectories and frames without a trajectory are picked on their own grades."""
    from sus2_workflows.steps.active import select_uncertain

    model = fitted_emt_model(n_train=24)
    training = emt_dataset(40, seed=0)

    def frame(a: float, trajectory: str | None, step: int):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.info = {"source": f"{trajectory or 'single'}:{step}"} | ({"trajectory": trajectory} if trajectory else {})
        return atoms

    candidates = [frame(3.61, "md:A", 1), frame(3.0, "md:A", 2), frame(2.9, "md:A", 3), frame(3.61, "relax:B", 1),
                  frame(2.95, "relax:B", 2), frame(3.05, None, 0), frame(2.92, None, 1)]
    grades = ExtrapolationGrade(model, training)(candidates)
    selected = select_uncertain(model, candidates, grades, 5.0, np.inf, max_new=10)
    assert grades[0] < 5.0 < grades[1] < grades[2] and grades[3] < 5.0 < grades[4]
    assert [a.info["source"] for a in selected] == ["md:A:2", "relax:B:2", "single:0", "single:1"]
    assert len(select_uncertain(model, candidates, grades, 5.0, np.inf, max_new=2)) == 2


def test_trust_levels_keep_frames_between_them_and_end_a_trajectory_at_the_upper():
    """Between the levels a frame is a candidate; at or above the upper one its trajectory ends (no later frame of
    it is picked, and that frame only where the trajectory had no candidate); every candidate of a trajectory
    (DP-GEN) or only its first (MLIP-2)."""
    from sus2_workflows.steps.active import select_uncertain

    model = fitted_emt_model(n_train=24)
    candidates = [bulk("Cu", "fcc", a=3.61, cubic=True) for _ in range(6)]
    for k, atoms in enumerate(candidates):
        atoms.info = {"source": f"md:{'AB'[k // 3]}:{k}", "trajectory": f"md:{'AB'[k // 3]}"}
    values = np.array([0.05, 0.2, 0.3, 0.2, 0.9, 0.25])  # A: accurate, two candidates; B: one, beyond, one after
    every = select_uncertain(model, candidates, values, 0.1, 0.4, max_new=10, first_per_trajectory=False)
    assert [a.info["source"] for a in every] == ["md:A:1", "md:A:2", "md:B:3"]
    first = select_uncertain(model, candidates, values, 0.1, 0.4, max_new=10)
    assert [a.info["source"] for a in first] == ["md:A:1", "md:B:3"]
    values = np.array([0.05, 0.5, 0.2, 0.9, 0.3, 0.2])  # A and B pass the upper level before any candidate
    beyond = select_uncertain(model, candidates, values, 0.1, 0.4, max_new=10, first_per_trajectory=False)
    assert [a.info["source"] for a in beyond] == ["md:A:1", "md:B:3"]  # where each trajectory stopped


def test_committee_deviation_is_small_inside_and_large_outside_the_training_set():
    from sus2_model.uncertainty import Committee

    from sus2_model.predict import predict

    model = fitted_emt_model(n_train=24)
    committee = Committee(model, emt_dataset(40, seed=0), size=4, seed=0)
    held_out = emt_dataset(10, seed=7)
    inside = committee.force_deviation(held_out)
    worst = [np.abs(p.forces - a.get_forces()).max() for p, a in zip(predict(model, held_out, stress=False), held_out)]
    squeezed = bulk("Cu", "fcc", a=3.0, cubic=True) * (2, 1, 1)  # 17 % compressed: never seen
    squeezed.rattle(0.1, seed=1)
    outside = committee.force_deviation([squeezed])
    assert len(committee.members) == 4 and np.corrcoef(inside, worst)[0, 1] > 0.8  # it tracks the real errors
    assert outside[0] > 10 * inside.max()
    with pytest.raises(ValueError, match="single-task"):
        model.add_task("other")
        Committee(model, emt_dataset(4, seed=0))



def test_new_minima_are_the_unlabelled_distinct_relaxation_ends():
    """Relaxation end points are labelled once per distinct minimum, a clean slab's first, then the lowest kept and
    the lowest the anomaly filter rejects in turn, at most ``max_new``, and not where a training structure already
    sits (atom by atom, minimum image)."""
    from sus2_workflows.steps.active import MINIMUM_SHIFT, new_minima

    def frame(trajectory: str, energy: float | None, shift: float = 0.0, symbol: str = "Cu", **info):
        atoms = bulk(symbol, "fcc", a=3.61, cubic=True)
        atoms.positions[0, 0] += shift
        atoms.info = {"source": trajectory, "trajectory": trajectory, **info}
        if energy is not None:  # an end point
            atoms.info.update(minimum=True, model_energy=energy)
        return atoms

    candidates = [frame("A", -1.0, 0.3), frame("B", -1.002, 0.6),  # one minimum (symmetry-equivalent sites)
                  frame("C", None, 0.9), frame("C", -2.0, 0.9, anomaly="intercalated"),
                  frame("D", -1.5, -0.3),  # labelled already
                  frame("E", None, 1.2), frame("E", -0.5, 1.2), frame("F", -1.001, symbol="Ni"),
                  frame("G", -0.1, 1.5, symbol="Al", clean_slab=True),
                  frame("H", -0.8, 1.8, anomaly="surface changed")]
    labelled = bulk("Cu", "fcc", a=3.61, cubic=True)
    labelled.positions[0, 0] += 3.61 - 0.3 + 0.5 * MINIMUM_SHIFT  # D's end, one cell over, nearly
    chosen = new_minima(candidates, training=[labelled], max_new=5)
    # kept D, B, F, A, E and rejected C, H take turns; D is labelled already and A is one minimum with B
    assert [(a.info["trajectory"], a.get_chemical_formula()) for a in chosen] == [
        ("G", "Al4"), ("C", "Cu4"), ("B", "Cu4"), ("H", "Cu4"), ("F", "Ni4")]
    assert [a.info["trajectory"] for a in new_minima(candidates, [labelled], max_new=8)] == list("GCBHFE")
    assert [a.info["trajectory"] for a in new_minima(candidates, [labelled], max_new=2)] == ["G", "C"]
    labelled.positions[0, 0] += MINIMUM_SHIFT  # now D's end is farther than the shift from any label
    assert [a.info["trajectory"] for a in new_minima(candidates, [labelled], max_new=5)] == list("GDCBH")


def test_exploration_runs_a_schedule_of_temperatures_and_pressures_and_stops_at_the_upper_level():
    from sus2_workflows.steps.active import explore

    model = fitted_emt_model(n_train=24)
    start = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    start.info["source"] = "seed:Cu"
    frames = explore(model, [start], [300.0, 900.0], 20, 5, pressures_gpa=[0.0, 20.0])
    names = sorted({f.info["trajectory"] for f in frames})
    assert names == ["md:seed:Cu:300K:0GPa", "md:seed:Cu:300K:20GPa", "md:seed:Cu:900K:0GPa", "md:seed:Cu:900K:20GPa"]
    volume = {n: [f.get_volume() for f in frames if f.info["trajectory"] == n][-1] for n in names}
    assert volume["md:seed:Cu:300K:20GPa"] < volume["md:seed:Cu:300K:0GPa"] < start.get_volume() * 1.02  # NPT
    calls = []

    def certain_until_third(images):  # the upper trust level is reached at each trajectory's third frame
        calls.append(1)
        return np.array([10.0 if len(calls) % 3 == 0 else 0.0])

    stopped = explore(model, [start], 300.0, 40, 5, uncertainty=certain_until_third, upper=1.0)
    assert len(stopped) == 3 and stopped[-1].info["source"] == "md:seed:Cu:15"
