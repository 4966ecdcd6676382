"""Run or submit a campaign spec as :class:`~.workchains.Sus2CampaignWorkChain` in an AiiDA profile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...cache import is_embedded
from ...documents import CampaignResultDocument
from ...errors import Sus2WorkflowError
from ...spec import CampaignSpec


def campaign_inputs(spec: CampaignSpec, folder: str | Path, store_uri: str | None = None, pw_code: str | None = None,
                    pw_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The work chain's inputs for ``spec`` in ``folder`` (its cache in ``store_uri``; None: embedded), with the
    code (a label, e.g. ``pw@cluster``) and scheduler options of its Quantum ESPRESSO labels where given."""
    from aiida import orm
    from aiida.orm.implementation.utils import clean_value

    data = spec.model_dump(mode="json")
    if CampaignSpec.model_validate(clean_value(data)).spec_hash() != spec.spec_hash():
        raise Sus2WorkflowError(f"spec {spec.name!r}: a number in it has more than the 14 significant digits AiiDA "
                                "keeps; round it, so every engine runs the same campaign")
    inputs = {"spec": orm.Dict(data), "folder": orm.Str(str(Path(folder).resolve()))}
    if not is_embedded(store_uri):
        inputs["store_uri"] = orm.Str(store_uri)
    if pw_code is not None:
        from aiida.common.exceptions import MultipleObjectsError, NotExistent

        try:
            inputs["pw_code"] = orm.load_code(pw_code)
        except (NotExistent, MultipleObjectsError) as exc:
            raise Sus2WorkflowError(f"--pw-code {pw_code}: {exc} (verdi code list; verdi code create "
                                    "core.code.installed ...)") from None
    if pw_options:
        inputs["pw_options"] = orm.Dict(pw_options)
    return inputs


def result_of(node: Any) -> CampaignResultDocument:
    """The result document of a finished campaign work chain; :class:`Sus2WorkflowError` naming the process, its
    exit status and message where it failed."""
    if not node.is_finished_ok:
        raise Sus2WorkflowError(f"AiiDA campaign {node.process_label}<{node.pk}> did not finish: "
                                f"[{node.exit_status}] {node.exit_message or node.process_state.value} "
                                f"(verdi process report {node.pk})")
    return node.outputs.result.value


def run_campaign_workchain(spec: CampaignSpec, folder: str | Path, store_uri: str | None = None,
                           submit: bool = False, **pw: Any) -> tuple[Any, CampaignResultDocument | None]:
    """The campaign's work chain node and, unless ``submit`` (to the profile's daemon: the result comes later),
    its result, run in this process; ``pw``: :func:`campaign_inputs`' ``pw_code`` and ``pw_options``."""
    from aiida import engine

    from .workchains import Sus2CampaignWorkChain

    inputs = campaign_inputs(spec, folder, store_uri, **pw)
    if submit:
        from aiida.common.exceptions import InvalidOperation
        from aiida.manage import get_manager

        try:
            return engine.submit(Sus2CampaignWorkChain, **inputs), None
        except InvalidOperation as exc:  # the embedded profile's broker runs with its daemon only
            name = get_manager().get_profile().name
            raise Sus2WorkflowError(f"--submit: {exc} Start it with: AIIDA_PATH={os.environ.get('AIIDA_PATH', '~')} "
                                    f"verdi -p {name} daemon start 2") from None
    _, node = engine.run_get_node(Sus2CampaignWorkChain, **inputs)
    return node, result_of(node)
