"""The inline engine: a campaign's stages in order in this process, with no workflow engine at all — the proof that
:mod:`sus2_workflows.campaign` is engine-neutral, and the fast path for tests."""

from __future__ import annotations

from rich.console import Console

from .. import campaign
from ..documents import CampaignResultDocument, atoms_from_dict
from ..labelers import make_labeler
from ..spec import CampaignSpec


def run_inline(spec: CampaignSpec, ws: campaign.Workspace, console: Console | None = None) -> CampaignResultDocument:
    """Run (or resume: every stage finds its cached results) the campaign ``spec`` in ``ws``."""
    say = (console or Console(stderr=True, quiet=True)).log
    labeler = make_labeler(spec.labeler)
    sources = bridging = None
    if spec.datasets:
        say(f"curate {len(spec.datasets)} imported dataset(s)")
        sources = campaign.curate(spec.datasets, spec.curation, ws)
        if spec.dbs is not None:
            bridging = campaign.choose_dbs(sources, spec.dbs, ws)
    say("label the seed structures")
    dataset = campaign.label(campaign.seed_structures(spec), labeler, spec.curation, ws, bridging=bridging)
    say(f"train on {dataset.n_structures} structures")
    model = campaign.train(dataset, spec.training, ws, sources, spec.target_task)
    history, iteration = [], 0
    while campaign.iteration_due(iteration, spec.active_learning):
        say(f"active learning, iteration {iteration}")
        step = campaign.explore_and_select(iteration, model, dataset, spec.active_learning, labeler, ws)
        history.append(step)
        if step.converged:
            break
        dataset = campaign.label([atoms_from_dict(d) for d in step.selected], labeler, spec.curation, ws,
                                 previous=dataset)
        model = campaign.fine_tune(dataset, model, spec.training, ws, sources)
        iteration += 1
    learned = campaign.learning_result(model, dataset, history, spec.active_learning, labeler, ws)
    screener = campaign.screening_model(learned.model, spec.screening.model)
    say(f"screen {len(spec.screening.eos)} equation-of-state target(s)")
    reference = labeler if spec.screening.eos_reference == "labeler" else None
    eos = campaign.screen(screener, spec.screening.eos, ws, reference)
    say(f"screen adsorption on {len(spec.screening.adsorption)} bulk target(s)")
    adsorption = campaign.screen_adsorption(screener, spec.screening.adsorption, labeler, ws)
    say(f"screen gas adsorption in {len(spec.screening.mof)} framework target(s)")
    mof = campaign.screen_mof(screener, spec.screening.mof, ws)
    return campaign.campaign_result(spec, learned, eos, adsorption, ws, screener, mof)
