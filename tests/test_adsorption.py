"""Surface adsorption screening: slabs, placements, the anomaly filter, site names, merged minima, gas references,
and the campaign stage with the labeler's check (ASE's EMT as a fast, real labeler and as the model's stand-in)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from sus2_workflows.campaign import MemoryCache, Workspace
from sus2_workflows.campaign.adsorption import check_with_labeler, screen_pair
from sus2_workflows.errors import ScreeningError
from sus2_workflows.labelers import make_labeler
from sus2_workflows.spec import AdsorptionTarget
from sus2_workflows.steps import adsorption as ads
from sus2_workflows.steps.adsorbates import adsorbate, chemical_potentials, reference_energy


@pytest.fixture(scope="module")
def cu111():
    return ads.make_slabs(bulk("Cu", "fcc", a=3.6), (1, 1, 1), 8.0, 12.0, 5.0, 2)[0]


def test_cu111_slab_layers_fixed_layers_and_sites(cu111):
    assert cu111.info["surface"] == "Cu(111)" and len(cu111) == 16
    groups = ads.layers(cu111)
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert sorted(cu111.constraints[0].index) == sorted(groups[0] + groups[1])
    assert set(np.flatnonzero(cu111.get_tags() == 1)) == set(groups[-1])
    assert np.allclose(cu111.cell[2, :2], 0) and cu111.cell[2, 2] > 18  # normal along z, vacuum kept
    sites = ads.site_positions(cu111, 1.5)
    assert [len(sites[k]) for k in ads.SITE_KINDS] == [1, 1, 2]  # ontop, bridge, fcc + hcp hollow
    assert ads.slab_problems(cu111, 5.0) == []
    assert "thinner than the model's cutoff" in ads.slab_problems(cu111, 7.0)[0]


def test_placements_are_named_and_an_overlapping_one_is_rejected(cu111):
    configurations, rejected = ads.placements(cu111, adsorbate("CO"), 3, seed=1)
    assert [c.info["placement"] for c in configurations] == ["ontop-0", "bridge-0", "hollow-0", "hollow-1",
                                                            "random-0", "random-1", "random-2"]
    assert rejected == [] and all((c.get_tags()[16:] == 2).all() for c in configurations)
    with pytest.raises(ScreeningError, match="placement inside: the adsorbate overlaps the surface"):
        ads.place(cu111, adsorbate("O"), cu111.positions[-1] + [0.1, 0.0, 0.2], "inside")


def test_a_pressed_placement_sits_on_the_repulsive_wall(cu111):
    """``pressed`` lowers the adsorbate straight down to CLOSE_CONTACT x the covalent bond, deeper on a hollow than
    on top of an atom; a configuration already that close is left alone."""
    configurations, _ = ads.placements(cu111, adsorbate("CO"), 0)
    top = cu111.positions[:, 2].max()
    drops = {}
    for placed in configurations:
        low = ads.pressed(placed, len(cu111))
        assert ads._contact_ratio(low, len(cu111)) == pytest.approx(ads.CLOSE_CONTACT, abs=1e-6)
        shift = low.positions[16:] - placed.positions[16:]
        assert np.allclose(shift[:, :2], 0) and np.allclose(shift[:, 2], shift[0, 2]) and shift[0, 2] < 0
        assert low.info["placement"] == placed.info["placement"] + "-pressed"
        drops[placed.info["placement"]] = placed.positions[16, 2] - low.positions[16, 2]
        assert ads.pressed(low, len(cu111)) is None
    assert drops["ontop-0"] < drops["bridge-0"] < drops["hollow-0"]
    assert min(low.positions[16, 2] for low in [ads.pressed(c, 16) for c in configurations]) > top


def test_relaxed_o_finds_hollow_sites_and_the_filter_names_anomalies(cu111):
    configurations, _ = ads.placements(cu111, adsorbate("O"), 0)
    hollow = configurations[2]
    relaxed, energy, converged = ads.relax_positions(hollow, EMT())
    assert converged and ads.anomaly(hollow, relaxed, 16) is None
    assert ads.site_of(relaxed, 16) in ("fcc hollow Cu3", "hcp hollow Cu3")
    desorbed = relaxed.copy()
    desorbed.positions[16, 2] += 6.0
    assert ads.anomaly(hollow, desorbed, 16) == "desorbed"
    below = relaxed.copy()
    below.positions[16, 2] -= 2.5
    assert ads.anomaly(hollow, below, 16) == "intercalated"
    moved = relaxed.copy()
    moved.positions[12] += [0.0, 0.0, 2.0]  # a surface atom pulled out of the surface
    assert ads.anomaly(hollow, moved, 16) == "surface changed"
    co = ads.placements(cu111, adsorbate("CO"), 0)[0][0]
    broken = co.copy()
    broken.positions[17, 2] += 2.0
    assert ads.anomaly(co, broken, 16) == "dissociated"


def test_equivalent_minima_merge_and_distinct_sites_stay_apart(cu111):
    configurations, _ = ads.placements(cu111, adsorbate("O"), 4, seed=0)
    relaxed = [ads.relax_positions(c, EMT())[:2] for c in configurations]
    minima = ads.merge_minima(relaxed, 16)
    assert sum(len(m.placements) for m in minima) == len(configurations)
    assert [m.energy for m in minima] == sorted(m.energy for m in minima)
    assert {"fcc hollow Cu3", "hcp hollow Cu3", "ontop Cu"} <= {m.site for m in minima}


def test_oc20_chemical_potentials():
    mu = chemical_potentials({"H2": -6.8, "H2O": -14.2, "CO": -14.8, "N2": -16.6})
    assert mu == pytest.approx({"H": -3.4, "O": -7.4, "C": -7.4, "N": -8.3})
    assert reference_energy(["O", "H"], mu) == pytest.approx(-10.8)
    with pytest.raises(ScreeningError, match="not in the library"):
        adsorbate("XY")


def test_screen_pair_with_dft_check_gives_success_and_zero_error_when_model_is_labeler(cu111, tmp_path):
    """EMT as both model and labeler: the labeler's adsorption energies equal the model's, the success metric holds
    and the cache makes a second check compute nothing."""
    labeler = make_labeler({"type": "ase", "module": "ase.calculators.emt", "callable": "EMT"})
    ws = Workspace(tmp_path, MemoryCache())
    target = AdsorptionTarget(bulk={"element": "Cu", "prototype": "fcc"}, adsorbates=["O"], random_placements=2,
                              references="labeler", dft_top_k=2)
    document = screen_pair(cu111, adsorbate("O"), target, EMT(), labeler, "emt", "Cu-fcc", ws)
    assert document.name == "Cu(111)+O" and document.minima[0].rank == 1
    assert document.references["method"] == "labeler" and set(document.references["molecules"]) == {"H2", "H2O"}
    checked = check_with_labeler(document, target, labeler, ws)
    n = len(document.minima)
    assert checked.dft.n_checked == n > 2 and checked.dft.success is True
    assert checked.dft.success_at == {k: True for k in range(1, n)}
    assert checked.dft.mae == pytest.approx(0.0, abs=1e-9) and checked.dft.best_dft_rank == 1
    n_labels = len(ws.cache.documents)
    again = check_with_labeler(document, target, labeler, ws)
    assert len(ws.cache.documents) == n_labels and again.dft == checked.dft
    # a model that ranked the minima backwards: its pick at k = 1 (the ontop O, EMT's worst by 0.16 eV) fails
    backwards = document.model_copy(update={
        "minima": [m.model_copy(update={"rank": k + 1}) for k, m in enumerate(reversed(document.minima))],
        "structures": document.structures[:1] + document.structures[:0:-1]})
    curve = check_with_labeler(backwards, target, labeler, ws).dft
    assert curve.best_dft_rank == n and curve.success_at[1] is False and curve.success_at[n - 1] is True
    assert len(ws.cache.documents) == n_labels  # the same structures: no new labels


def test_campaign_learns_the_surface_and_names_bad_targets(tmp_path, capsys):
    """A campaign with a learned Cu(111)+O target labels the slab seeds, explores from them, screens the surface with
    the labeler's check; a slab thinner than the cutoff and an unknown adsorbate file are named failures; its model
    then screens through ``sus2 screen adsorption``."""
    from sus2_workflows import campaign
    from sus2_workflows.engines.inline import run_inline
    from sus2_workflows.spec import CampaignSpec

    from .test_campaign_core import DETERMINISTIC

    spec = CampaignSpec(**{**DETERMINISTIC, "labeler": {"type": "ase", "module": "ase.calculators.emt",
                                                        "callable": "EMT"},
                           "screening": {"adsorption": [
                               {"bulk": {"element": "Cu", "prototype": "fcc"}, "adsorbates": ["O"],
                                "random_placements": 2, "references": "labeler", "dft_top_k": 2, "learn": True},
                               {"bulk": {"element": "Cu", "prototype": "fcc"}, "adsorbates": ["O", "no-such.xyz"],
                                "min_slab": 4.0, "fixed_layers": 1}]}})
    seeds = campaign.seed_structures(spec)
    surface = [a for a in seeds if a.info["source"].startswith("seed:surface:Cu(111):")]
    assert len(surface) == 9  # the clean slab, O on 4 sites and the 4 pressed onto the surface
    assert campaign.learning.md_starts(seeds)[-1].info["source"] == "seed:surface:Cu(111):1"
    ws = Workspace(tmp_path, MemoryCache())
    result = run_inline(spec, ws)
    (screened,) = result.adsorption
    assert screened.name == "Cu(111)+O" and screened.dft.n_checked == len(screened.minima)
    assert screened.dft.success is not None and screened.dft.mae is not None
    (iteration,) = [d for (kind, _), d in ws.cache.documents.items() if kind == "active_learning"]
    ends = [a["info"] for a in iteration["selected"] if a["info"].get("minimum")]  # the model's own minima
    assert iteration["n_minima"] == len(ends) >= 1 and all(e["source"].startswith("relax:seed:surface:") for e in ends)
    errors = sorted(f.error for f in result.failures)
    assert any("no-such.xyz" in e and "not in the library" in e for e in errors)
    assert any(e.startswith("Cu(111)+O: the slab is") and "thinner than the model's cutoff" in e for e in errors)
    assert run_inline(spec, ws).result_hashes == result.result_hashes  # resumed from the cache, same hashes
    model_path = next(m["model_path"] for (kind, _), m in ws.cache.documents.items()
                      if kind == "model" and m["model_hash"] == result.model_hash)
    _relaxations_explore_the_placements(seeds, model_path)
    _screen_adsorption_command(tmp_path, model_path, capsys)


def _relaxations_explore_the_placements(seeds, model_path):
    """Active learning relaxes every learned clean slab and placement with the model, its bottom layer fixed as in
    the screen: frames down to a lower energy, named by the seed they start from, the end points marked with the
    screen's anomaly where it would reject them, and the clean slab's end point as such."""
    from sus2_model import Sus2Calculator, load_model

    from sus2_workflows.campaign.learning import relaxation_starts
    from sus2_workflows.steps.active import relaxation_frames
    from sus2_workflows.steps.adsorption import RELAX_FMAX, anomaly, layers

    starts = relaxation_starts(seeds)
    assert [a.info["source"] for a in starts] == [f"seed:surface:Cu(111):{k}" for k in range(9)]
    model = load_model(model_path)
    frames = relaxation_frames(model, starts, steps=30, sample_every=5)
    calculator = Sus2Calculator(model)
    ends = 0
    for start in starts:
        mine = [f for f in frames if f.info["source"].startswith(f"relax:{start.info['source']}:")]
        assert 1 <= len(mine) <= 7  # every 5th of the first 30 steps, and the end point
        assert calculator.get_potential_energy(mine[-1]) < calculator.get_potential_energy(start)
        n_slab = start.info["n_slab"]
        fixed = [i for layer in layers(start, range(n_slab))[:start.info["fixed_layers"]] for i in layer]
        assert np.allclose(mine[-1].positions[fixed], start.positions[fixed])
        if mine[-1].info.get("minimum"):
            ends += 1
            free = np.setdiff1d(np.arange(len(start)), fixed)
            assert np.isclose(mine[-1].info["model_energy"], calculator.get_potential_energy(mine[-1]))
            assert np.abs(calculator.get_forces(mine[-1])[free]).max() < RELAX_FMAX
            assert mine[-1].info.get("anomaly") == anomaly(start, mine[-1], n_slab)
            assert mine[-1].info.get("clean_slab", False) == (len(start) == n_slab)
        assert not any(f.info.get("minimum") for f in mine[:-1])
    assert ends >= len(starts) // 2


def _screen_adsorption_command(tmp_path, model_path, capsys):
    """``sus2 screen adsorption`` with the campaign's model: a record per surface/adsorbate pair, the labeler's
    check on the best minimum, and a missing bulk file named."""
    import ase.io

    from sus2_workflows.cli import main

    ase.io.write(tmp_path / "Cu.cif", bulk("Cu", "fcc", a=3.6, cubic=True))
    capsys.readouterr()
    assert main(["screen", "adsorption", str(tmp_path / "Cu.cif"), str(tmp_path / "missing.cif"), "--model",
                 model_path, "--adsorbate", "O", "--random-placements", "1", "--labeler", "ase.calculators.emt:EMT",
                 "--dft-top-k", "1", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (pair,) = [r for r in records if "error" not in r]
    assert pair["pair"] == "Cu(111)+O" and pair["references_by"] == "labeler" and pair["minima"]
    assert pair["minima"][0]["labeler_adsorption_energy_ev"] is not None and pair["success"] is not None
    assert [r["pair"] for r in records if "error" in r] == ["missing.cif"]
