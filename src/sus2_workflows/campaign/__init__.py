"""The engine-neutral campaign layer: one function per stage, typed documents in and out, a small cache protocol.

Stages — ``data``: :func:`seed_structures`, :func:`curate`, :func:`choose_dbs`; ``labels``: :func:`plan_labels`,
then :func:`compute_labels` (in process) or :func:`record_output` + :func:`recorded_outcome` (engine jobs), or
:func:`store_label` / :func:`record_failure` (labels an engine brings back, or its failures), then :func:`merge_labels` (:func:`label` does all three in one
process), :func:`export_labels` and :func:`import_labels` (labels moved between campaigns); ``learning``:
:func:`train`, :func:`iteration_due`, :func:`explore_and_select`, :func:`fine_tune`, :func:`learning_result`;
``screening``: :func:`screening_model` (:func:`named_model`), :func:`screen` (with :func:`reference_eos`),
:func:`screen_adsorption`, :func:`screen_mof`, :func:`campaign_result`.  Engines (inline, jobflow, AiiDA) only
schedule these; importing this package imports no workflow engine and no database client.
"""

from .adsorption import screen_adsorption
from .cache import Cache, MemoryCache, Workspace
from .data import choose_dbs, curate, seed_structures
from .labels import (LabelOutcome, LabelPlan, compute_labels, export_labels, import_labels, label, merge_labels,
                     plan_labels, record_failure, record_output, recorded_outcome, store_label)
from .mof import screen_mof
from .learning import explore_and_select, fine_tune, iteration_due, learning_result, train
from .screening import campaign_result, model_calculator, named_model, reference_eos, screen, screening_model

__all__ = ["Cache", "LabelOutcome", "LabelPlan", "MemoryCache", "Workspace", "campaign_result", "choose_dbs",
           "compute_labels", "curate", "explore_and_select", "export_labels", "fine_tune", "import_labels",
           "iteration_due", "label", "learning_result", "merge_labels", "model_calculator", "named_model",
           "plan_labels", "record_failure", "record_output", "recorded_outcome", "reference_eos", "screen", "screen_adsorption",
           "screen_mof", "screening_model", "seed_structures", "store_label", "train"]
