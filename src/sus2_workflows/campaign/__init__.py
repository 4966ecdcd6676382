"""The engine-neutral campaign layer: one function per stage, typed documents in and out, a small cache protocol.

Stages: :func:`seed_structures`, :func:`curate`, :func:`choose_dbs` (``data``); :func:`plan_labels`,
:func:`compute_labels` / :func:`collect_labels`, :func:`merge_labels` and :func:`label` (``labels``); :func:`train`,
:func:`iteration_due`, :func:`explore_and_select`, :func:`learning_result` (``learning``); :func:`screen`,
:func:`campaign_result` (``screening``).  Engines (inline, jobflow, AiiDA) only schedule these; importing this
package imports no workflow engine and no database client.
"""

from .cache import Cache, MemoryCache, Workspace
from .data import choose_dbs, curate, seed_structures
from .labels import LabelOutcome, LabelPlan, collect_labels, compute_labels, label, merge_labels, plan_labels
from .learning import explore_and_select, iteration_due, learning_result, train
from .screening import campaign_result, screen

__all__ = ["Cache", "LabelOutcome", "LabelPlan", "MemoryCache", "Workspace", "campaign_result", "choose_dbs",
           "collect_labels", "compute_labels", "curate", "explore_and_select", "iteration_due", "label",
           "learning_result", "merge_labels", "plan_labels", "screen", "seed_structures", "train"]
