"""AiiDA work chains of a campaign (entry points ``sus2.*`` in ``aiida.workflows``): one per stage and
:class:`Sus2CampaignWorkChain` over them all, in the order of :func:`~sus2_workflows.engines.inline.run_inline`.
They only schedule: every step calls one calcfunction of :mod:`.functions` (each one a stage of the engine-neutral
campaign layer), so the campaign's documents equal the other engines'.  Labels are one process per calculation,
so a failed calculation ends its own process with a named exit code and the stage goes on with the rest."""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from ...errors import Sus2WorkflowError
from ...labelers import make_labeler
from ...spec import CampaignSpec
from ...steps.label import QuantumEspressoLabeler
from . import functions, pw
from .data import DatasetData, DocumentData, ModelData
from .functions import EXIT_CODES, exit_code


def _declare_exit_codes(spec: Any) -> None:
    """The work chain's named exit codes (:data:`~.functions.EXIT_CODES`)."""
    for name, (status, message) in EXIT_CODES.items():
        spec.exit_code(status, name, message=message)


def _sub_process_failed(node: orm.ProcessNode) -> Any:
    """``ERROR_SUB_PROCESS_FAILED`` naming ``node`` and its own exit status and message."""
    return exit_code("ERROR_SUB_PROCESS_FAILED", process=f"{node.process_label}<{node.pk}>",
                     message=f"[{node.exit_status}] {node.exit_message or node.process_state.value}")


def _function_failed(node: orm.CalcFunctionNode) -> Any:
    """A calcfunction's named exit code, passed on (an excepted one: ``ERROR_SUB_PROCESS_FAILED``)."""
    return node.exit_code or _sub_process_failed(node)


def _labeler_problem(settings: orm.Dict) -> str:
    """Why the labeler ``settings`` describe cannot label in this engine's processes, or ``""``."""
    try:
        labeler = make_labeler(settings.get_dict())
    except (ValueError, Sus2WorkflowError) as exc:
        return f"the labeler: {exc}"
    if not labeler.in_process:
        return (f"labeler {labeler.name!r} runs as workflow-engine jobs, which the AiiDA engine does not schedule yet "
                "(use --engine local, fireworks or jobflow-remote)")
    return ""


def _workspace_inputs(spec: Any) -> None:
    """The inputs every stage shares: the campaign folder and the store that holds its cache."""
    spec.input("folder", valid_type=orm.Str, help="the campaign folder (DFT runs, models, embedded store)")
    spec.input("store_uri", valid_type=orm.Str, required=False, help="a mongodb:// store for the campaign cache")


def _workspace_args(inputs: Any) -> dict[str, Any]:
    """The campaign folder and store among a work chain's ``inputs``, to hand to its calcfunctions and children."""
    return {k: inputs[k] for k in ("folder", "store_uri") if k in inputs}


def _pw_inputs(spec: Any) -> None:
    """Where Quantum ESPRESSO labels run: an AiiDA code and its scheduler options (default: pw.x as the labeler's
    ``command`` runs it on this machine)."""
    spec.input("pw_code", valid_type=orm.AbstractCode, required=False, help="the pw.x code (e.g. pw@cluster)")
    spec.input("pw_options", valid_type=orm.Dict, required=False,
               help="PwCalculation metadata.options, e.g. resources, max_wallclock_seconds, queue_name, account")


def _pw_args(inputs: Any) -> dict[str, Any]:
    """The pw.x code and options among a work chain's ``inputs``, to hand to its children."""
    return {k: inputs[k] for k in ("pw_code", "pw_options") if k in inputs}


class _StageWorkChain(WorkChain):
    """A stage that runs one calcfunction (its inputs exposed) and returns its result as ``_output``."""

    _function: Any = None
    _output: str = "result"
    _output_type: type = DocumentData

    @classmethod
    def define(cls, spec: Any) -> None:
        """Inputs of the calcfunction, one output, the named exit codes."""
        super().define(spec)
        spec.expose_inputs(cls._function.process_class, exclude=("metadata",))
        spec.output(cls._output, valid_type=cls._output_type)
        spec.outline(cls.run_stage)
        _declare_exit_codes(spec)

    def run_stage(self) -> Any:
        """Run the stage's calcfunction; its exit code is the work chain's."""
        result, node = self._function.run_get_node(**self.exposed_inputs(self._function.process_class))
        if not node.is_finished_ok:
            return _function_failed(node)
        self.out(self._output, result)
        return None


class Sus2CurateWorkChain(_StageWorkChain):
    """Import and curate existing labelled datasets, one training task each."""

    _function, _output = functions.curate_datasets, "curated"


class Sus2DbsWorkChain(_StageWorkChain):
    """Choose the domain-bridging set from curated datasets."""

    _function, _output = functions.choose_bridging_set, "bridging"


class Sus2TrainWorkChain(WorkChain):
    """Train a model on a labelled dataset or, given ``model``, retrain/fine-tune it on the grown dataset."""

    @classmethod
    def define(cls, spec: Any) -> None:
        """Dataset, training settings, optional imported tasks and starting model; the model out."""
        super().define(spec)
        spec.expose_inputs(functions.train_model.process_class, exclude=("metadata",))
        spec.input("model", valid_type=ModelData, required=False, help="fine-tune this model (active learning)")
        spec.output("model", valid_type=ModelData)
        spec.outline(cls.train)
        _declare_exit_codes(spec)

    def train(self) -> Any:
        """:func:`~.functions.train_model`, or :func:`~.functions.fine_tune_model` from ``model``."""
        inputs = self.exposed_inputs(functions.train_model.process_class)
        if "model" in self.inputs:
            inputs.pop("task", None)
            result, node = functions.fine_tune_model.run_get_node(model=self.inputs.model, **inputs)
        else:
            result, node = functions.train_model.run_get_node(**inputs)
        if not node.is_finished_ok:
            return _function_failed(node)
        self.out("model", result)
        return None


class Sus2LabelStructureWorkChain(_StageWorkChain):
    """One structure's labels by the campaign's (in-process) labeler; ``ERROR_LABEL_FAILED`` where it fails."""

    _function, _output = functions.label_structure, "label"


class Sus2PwLabelWorkChain(WorkChain):
    """One structure's Quantum ESPRESSO labels through aiida-quantumespresso's ``PwBaseWorkChain`` (its restarts and
    error handlers), read by :func:`~.functions.pw_label`; a calculation that still fails is recorded against the
    structure (``ERROR_SCF_NOT_CONVERGED`` or ``ERROR_LABEL_FAILED``)."""

    @classmethod
    def define(cls, spec: Any) -> None:
        """The structure (by index), the labeler, the code and its options; the label out."""
        super().define(spec)
        spec.input("structures", valid_type=DocumentData)
        spec.input("index", valid_type=orm.Int)
        spec.input("labeler", valid_type=orm.Dict, help="a quantum_espresso labeler's settings")
        spec.input("code", valid_type=orm.AbstractCode)
        spec.input("options", valid_type=orm.Dict, help="PwCalculation metadata.options")
        spec.input("pseudo_family", valid_type=orm.Str, help="the labeler's aiida-pseudo family (its label)")
        spec.input("flags", valid_type=orm.List, required=False, help="pw.x's command-line flags, e.g. -nk 2")
        _workspace_inputs(spec)
        spec.output("label", valid_type=DocumentData)
        spec.outline(cls.run_pw, cls.collect)
        _declare_exit_codes(spec)

    def _structure(self) -> Any:
        return functions.structures_of(self.inputs.structures.value)[self.inputs.index.value]

    def _failed(self, name: str, error: str) -> Any:
        """Record this structure's failure in the campaign's cache (the dataset lists it, the next run retries it)
        and return the exit code ``name``."""
        from ... import campaign
        from ...campaign.labels import label_key

        atoms = self._structure()
        source = functions.source_of(atoms, self.inputs.index.value)
        campaign.record_failure(label_key(atoms, make_labeler(self.inputs.labeler.get_dict())),
                                {"source": source, "error": error},
                                functions.workspace(self.inputs.folder, self.inputs.get("store_uri")))
        return exit_code(name, message=f"{source}: {error}")

    def run_pw(self) -> Any:
        """Submit the SCF with forces and stress; inputs that PwBaseWorkChain refuses (no pseudopotential for an
        element, options the scheduler cannot run) fail this structure only."""
        from aiida_pseudo.groups.family import PseudoPotentialFamily
        from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

        labeler = make_labeler(self.inputs.labeler.get_dict())
        try:
            inputs = pw.pw_base_inputs(labeler, self._structure(), self.inputs.code, self.inputs.options.get_dict(),
                                       PseudoPotentialFamily.collection.get(label=self.inputs.pseudo_family.value),
                                       self.inputs.flags.get_list() if "flags" in self.inputs else None)
            return ToContext(pw=self.submit(PwBaseWorkChain, **inputs, metadata={"call_link_label": "scf"}))
        except (Sus2WorkflowError, ValueError, KeyError) as exc:  # aiida's input validation raises ValueError
            return self._failed("ERROR_LABEL_FAILED", f"the pw.x inputs: {type(exc).__name__}: {exc}")

    def collect(self) -> Any:
        """The labels of a finished calculation; a failed calculation, or output without labels, recorded."""
        node = self.ctx.pw
        if not node.is_finished_ok:
            name = "ERROR_SCF_NOT_CONVERGED" if pw.scf_not_converged(node) else "ERROR_LABEL_FAILED"
            return self._failed(name, f"PwBaseWorkChain<{node.pk}> [{node.exit_status}] "
                                      f"{node.exit_message or node.process_state.value}")
        result, function = functions.pw_label.run_get_node(
            structures=self.inputs.structures, index=self.inputs.index, labeler=self.inputs.labeler,
            retrieved=node.outputs.retrieved, **_workspace_args(self.inputs))
        if not function.is_finished_ok:
            return self._failed("ERROR_LABEL_FAILED", f"pw_label<{function.pk}> [{function.exit_status}] "
                                                      f"{function.exit_message}")
        self.out("label", result)
        return None


class Sus2LabelWorkChain(WorkChain):
    """Label structures (and a domain-bridging set) with the campaign's labeler and merge them into a dataset: what
    the cache holds is never computed again; each missing label is its own process (:class:`Sus2PwLabelWorkChain`
    for Quantum ESPRESSO, :class:`Sus2LabelStructureWorkChain` for other in-process labelers), run in parallel by the
    daemon's workers; a failed one is listed in the dataset, the rest go on."""

    @classmethod
    def define(cls, spec: Any) -> None:
        """Structures, labeler, curation caps, the dataset it extends; the merged dataset out."""
        super().define(spec)
        spec.input("structures", valid_type=DocumentData, help="structure dicts, or an active-learning selection")
        spec.input("labeler", valid_type=orm.Dict)
        spec.input("curation", valid_type=orm.Dict)
        spec.input("previous", valid_type=DatasetData, required=False, help="the dataset the labels extend")
        spec.input("bridging", valid_type=DocumentData, required=False, help="a domain-bridging set to label too")
        _workspace_inputs(spec)
        _pw_inputs(spec)
        spec.output("dataset", valid_type=DatasetData)
        spec.outline(cls.label, cls.merge)
        _declare_exit_codes(spec)

    def label(self) -> Any:
        """One process per label the cache does not hold yet."""
        from ... import campaign

        problem = _labeler_problem(self.inputs.labeler)
        if problem:
            return exit_code("ERROR_BAD_INPUT", message=problem)
        labeler = make_labeler(self.inputs.labeler.get_dict())
        ws = functions.workspace(self.inputs.folder, self.inputs.get("store_uri"))
        sources = [("structures", self.inputs.structures)] + \
                  ([("bridging", self.inputs.bridging)] if "bridging" in self.inputs else [])
        missing, seen = [], set()
        for name, node in sources:
            plan = campaign.plan_labels(functions.structures_of(node.value), labeler, ws)
            todo = set(plan.todo_keys)
            for index, key in enumerate(plan.keys):
                if key in todo and key not in seen:  # the same structure twice is labelled once
                    seen.add(key)
                    missing.append((f"{name}_{index}", node, index))
        calculations = {}
        if missing:  # the labeler's code is needed only now: labels imported from elsewhere need no pw.x here
            try:
                child, run_on = self._labelling_process(labeler)
            except Sus2WorkflowError as exc:
                return exit_code("ERROR_BAD_INPUT", message=exc)
            calculations = {name: self.submit(child, structures=node, index=orm.Int(index),
                                              labeler=self.inputs.labeler, **run_on, **_workspace_args(self.inputs))
                            for name, node, index in missing}
        self.report(f"{len(calculations)} labels to compute ({labeler.name})")
        return ToContext(**{f"label_{name}": process for name, process in calculations.items()})

    def _labelling_process(self, labeler: Any) -> tuple[type, dict[str, Any]]:
        """The process that labels one structure and the inputs it needs besides the structure: Quantum ESPRESSO
        through aiida-quantumespresso (the code named, one machine by default, or pw.x on this machine; the
        pseudopotential family created here, once; the children load it by label), any other in-process labeler
        through :class:`Sus2LabelStructureWorkChain`."""
        if not isinstance(labeler, QuantumEspressoLabeler):
            return Sus2LabelStructureWorkChain, {}
        family = orm.Str(pw.pseudo_family(labeler).label)
        options = self.inputs.pw_options.get_dict() if "pw_options" in self.inputs else {}
        if "pw_code" in self.inputs:
            return Sus2PwLabelWorkChain, {"code": self.inputs.pw_code, "pseudo_family": family,
                                          "options": orm.Dict({"resources": {"num_machines": 1}, **options})}
        code, local, flags = pw.local_pw_code(labeler.command)
        return Sus2PwLabelWorkChain, {"code": code, "options": orm.Dict({**local, **options}), "pseudo_family": family,
                                      **({"flags": orm.List(flags)} if flags else {})}

    def merge(self) -> Any:
        """The dataset from every label (:func:`~.functions.merge_labels`); failed calculations are listed in it."""
        labels, failed = {}, []
        for name, node in self.ctx.items():
            if name.startswith("label_"):
                if node.is_finished_ok:
                    labels[name] = node.outputs.label
                else:
                    failed.append(f"{node.pk}: [{node.exit_status}] {node.exit_message}")
        if failed:
            self.report(f"{len(failed)} label(s) failed, the rest go on: " + "; ".join(failed))
        optional = {k: self.inputs[k] for k in ("previous", "bridging") if k in self.inputs}
        result, node = functions.merge_labels.run_get_node(
            structures=self.inputs.structures, labeler=self.inputs.labeler, curation=self.inputs.curation,
            **optional, **_workspace_args(self.inputs), **labels)
        if not node.is_finished_ok:
            return _function_failed(node)
        self.out("dataset", result)
        return None


class Sus2ActiveLearningWorkChain(WorkChain):
    """Active learning until nothing is uncertain or the iteration cap: explore and select with the current model,
    label the selection (:class:`Sus2LabelWorkChain`), retrain (:class:`Sus2TrainWorkChain`), again."""

    @classmethod
    def define(cls, spec: Any) -> None:
        """Starting model and dataset, the loop's, labeler's, curation's and training's settings."""
        super().define(spec)
        spec.input("model", valid_type=ModelData)
        spec.input("dataset", valid_type=DatasetData)
        spec.input("settings", valid_type=orm.Dict, help="the spec's active_learning section")
        spec.input("labeler", valid_type=orm.Dict)
        spec.input("curation", valid_type=orm.Dict)
        spec.input("training", valid_type=orm.Dict)
        spec.input("sources", valid_type=DocumentData, required=False, help="curated imported tasks")
        _workspace_inputs(spec)
        _pw_inputs(spec)
        spec.output("learned", valid_type=DocumentData, help="ActiveLearningResult: final model, dataset, history")
        spec.output("model", valid_type=ModelData)
        spec.output("dataset", valid_type=DatasetData)
        spec.outline(cls.setup, while_(cls.iteration_due)(cls.explore, if_(cls.uncertain)(cls.label, cls.retrain),
                                                            cls.next_iteration), cls.results)
        _declare_exit_codes(spec)

    def setup(self) -> None:
        """Start from the given model and dataset."""
        self.ctx.iteration, self.ctx.converged, self.ctx.history = 0, False, {}
        self.ctx.model, self.ctx.dataset = self.inputs.model, self.inputs.dataset

    def iteration_due(self) -> bool:
        """Not converged and below the iteration cap (:func:`campaign.iteration_due`)."""
        from ... import campaign
        from ...spec import ActiveLearningSpec

        settings = ActiveLearningSpec.model_validate(self.inputs.settings.get_dict())
        return not self.ctx.converged and campaign.iteration_due(self.ctx.iteration, settings)

    def explore(self) -> Any:
        """MD and relaxations with the current model; the uncertain frames and new minima to label."""
        self.report(f"active learning, iteration {self.ctx.iteration}")
        result, node = functions.explore_and_select.run_get_node(
            iteration=orm.Int(self.ctx.iteration), model=self.ctx.model, dataset=self.ctx.dataset,
            settings=self.inputs.settings, labeler=self.inputs.labeler, **_workspace_args(self.inputs))
        if not node.is_finished_ok:
            return _function_failed(node)
        self.ctx.history[f"iteration_{self.ctx.iteration}"] = result
        self.ctx.step = result
        self.ctx.converged = result.value.converged
        return None

    def uncertain(self) -> bool:
        """Whether the exploration selected anything to label."""
        return not self.ctx.converged

    def label(self) -> Any:
        """Label the selection into the grown dataset."""
        process = self.submit(Sus2LabelWorkChain, structures=self.ctx.step, previous=self.ctx.dataset,
                              labeler=self.inputs.labeler, curation=self.inputs.curation,
                              **_pw_args(self.inputs), **_workspace_args(self.inputs))
        return ToContext(labelled=process)

    def retrain(self) -> Any:
        """Retrain on the grown dataset."""
        if not self.ctx.labelled.is_finished_ok:
            return _sub_process_failed(self.ctx.labelled)
        self.ctx.dataset = self.ctx.labelled.outputs.dataset
        optional = {"sources": self.inputs.sources} if "sources" in self.inputs else {}
        process = self.submit(Sus2TrainWorkChain, dataset=self.ctx.dataset, model=self.ctx.model,
                              training=self.inputs.training, **optional, **_workspace_args(self.inputs))
        return ToContext(trained=process)

    def next_iteration(self) -> Any:
        """Take the retrained model on to the next iteration."""
        if not self.ctx.converged:
            if not self.ctx.trained.is_finished_ok:
                return _sub_process_failed(self.ctx.trained)
            self.ctx.model = self.ctx.trained.outputs.model
            self.ctx.iteration += 1
        return None

    def results(self) -> Any:
        """The final model, dataset and the iterations' summaries."""
        learned, node = functions.learning_result.run_get_node(
            model=self.ctx.model, dataset=self.ctx.dataset, settings=self.inputs.settings,
            labeler=self.inputs.labeler, **_workspace_args(self.inputs), **self.ctx.history)
        if not node.is_finished_ok:
            return _function_failed(node)
        self.out("learned", learned)
        self.out("model", self.ctx.model)
        self.out("dataset", self.ctx.dataset)
        return None


class Sus2EosWorkChain(_StageWorkChain):
    """Equations of state of target structures, checked against the reference labeler where given."""

    _function, _output = functions.screen_eos, "screening"


class Sus2AdsorptionWorkChain(_StageWorkChain):
    """AdsorbML-style adsorption screens of surfaces, the labeler's checks of the best minima."""

    _function, _output = functions.screen_adsorption, "screening"


class Sus2MofWorkChain(_StageWorkChain):
    """Gas adsorption in frameworks: Widom insertions and binding sites."""

    _function, _output = functions.screen_mof, "screening"


class Sus2CampaignWorkChain(WorkChain):
    """A whole campaign from its spec: [curate imported data -> DBS] -> label seeds (+ DBS) -> train -> active
    learning -> EOS, adsorption and MOF screens -> the result document (content hashes)."""

    @classmethod
    def define(cls, spec: Any) -> None:
        """The spec (a ``Dict`` of a ``workflows/*.yaml``) and where the campaign lives."""
        super().define(spec)
        spec.input("spec", valid_type=orm.Dict, help="the campaign spec (sus2_workflows.spec.CampaignSpec)")
        _workspace_inputs(spec)
        _pw_inputs(spec)
        spec.output("result", valid_type=DocumentData, help="CampaignResultDocument")
        spec.output("model", valid_type=ModelData, help="the campaign's final model")
        spec.output("dataset", valid_type=DatasetData, help="the campaign's final labelled dataset")
        spec.output("eos", valid_type=DocumentData, required=False)
        spec.output("adsorption", valid_type=DocumentData, required=False)
        spec.output("mof", valid_type=DocumentData, required=False)
        spec.outline(cls.setup, if_(cls.has_datasets)(cls.curate, cls.choose_dbs), cls.label_seeds, cls.train,
                     cls.learn, cls.screen, cls.results)
        _declare_exit_codes(spec)

    def _settings(self, value: Any) -> orm.Dict:
        return orm.Dict(value.model_dump(mode="json") if hasattr(value, "model_dump") else dict(value))

    def setup(self) -> Any:
        """Check the spec; the settings nodes every stage shares."""
        try:
            self.ctx.campaign = CampaignSpec.model_validate(self.inputs.spec.get_dict())
        except ValueError as exc:
            return exit_code("ERROR_BAD_INPUT", message=f"the campaign spec: {exc}")
        spec = self.ctx.campaign
        # stored now: the work chain's checkpoints hold its context, and an unstored node cannot be checkpointed
        self.ctx.labeler = self._settings(spec.labeler).store()
        self.ctx.curation = self._settings(spec.curation).store()
        self.ctx.training = orm.Dict(dict(spec.training)).store()
        problem = _labeler_problem(self.ctx.labeler)
        return exit_code("ERROR_BAD_INPUT", message=problem) if problem else None

    def has_datasets(self) -> bool:
        """Whether the spec imports existing datasets."""
        return bool(self.ctx.campaign.datasets)

    def curate(self) -> Any:
        """Curate the imported datasets."""
        datasets = orm.List([d.model_dump(mode="json") for d in self.ctx.campaign.datasets])
        return ToContext(curated=self.submit(Sus2CurateWorkChain, datasets=datasets, curation=self.ctx.curation,
                                             **_workspace_args(self.inputs)))

    def choose_dbs(self) -> Any:
        """The domain-bridging set, where the spec asks for one."""
        if not self.ctx.curated.is_finished_ok:
            return _sub_process_failed(self.ctx.curated)
        if self.ctx.campaign.dbs is None:
            return None
        return ToContext(chosen=self.submit(Sus2DbsWorkChain, curated=self.ctx.curated.outputs.curated,
                                            dbs=self._settings(self.ctx.campaign.dbs), **_workspace_args(self.inputs)))

    def _sources(self) -> dict[str, Any]:
        return {"sources": self.ctx.curated.outputs.curated} if "curated" in self.ctx else {}

    def label_seeds(self) -> Any:
        """Label the seed structures (and the domain-bridging set)."""
        bridging = {}
        if "chosen" in self.ctx:
            if not self.ctx.chosen.is_finished_ok:
                return _sub_process_failed(self.ctx.chosen)
            bridging = {"bridging": self.ctx.chosen.outputs.bridging}
        seeds, node = functions.seed_structures.run_get_node(self.inputs.spec)
        if not node.is_finished_ok:
            return _function_failed(node)
        return ToContext(labelled=self.submit(Sus2LabelWorkChain, structures=seeds, labeler=self.ctx.labeler,
                                              curation=self.ctx.curation, **bridging, **_pw_args(self.inputs),
                                              **_workspace_args(self.inputs)))

    def train(self) -> Any:
        """Train the first model."""
        if not self.ctx.labelled.is_finished_ok:
            return _sub_process_failed(self.ctx.labelled)
        task = self.ctx.campaign.target_task
        return ToContext(trained=self.submit(Sus2TrainWorkChain, dataset=self.ctx.labelled.outputs.dataset,
                                             training=self.ctx.training, **self._sources(),
                                             **({"task": orm.Str(task)} if task else {}),
                                             **_workspace_args(self.inputs)))

    def learn(self) -> Any:
        """Active learning from the first model."""
        if not self.ctx.trained.is_finished_ok:
            return _sub_process_failed(self.ctx.trained)
        return ToContext(learner=self.submit(
            Sus2ActiveLearningWorkChain, model=self.ctx.trained.outputs.model,
            dataset=self.ctx.labelled.outputs.dataset, settings=self._settings(self.ctx.campaign.active_learning),
            labeler=self.ctx.labeler, curation=self.ctx.curation, training=self.ctx.training, **self._sources(),
            **_pw_args(self.inputs), **_workspace_args(self.inputs)))

    def screen(self) -> Any:
        """The screening model, then the EOS, adsorption and MOF screens side by side."""
        if not self.ctx.learner.is_finished_ok:
            return _sub_process_failed(self.ctx.learner)
        screening = self.ctx.campaign.screening
        screener = self.ctx.learner.outputs.model  # the campaign's final model, unless the spec names another
        if screening.model is not None:
            screener, node = functions.named_model.run_get_node(named=self._settings(screening.model))
            if not node.is_finished_ok:
                return _function_failed(node)
        self.ctx.screener = screener
        dump = lambda targets: orm.List([t.model_dump(mode="json") for t in targets])  # noqa: E731
        reference = {"reference": self.ctx.labeler} if screening.eos_reference == "labeler" else {}
        where = _workspace_args(self.inputs)
        return ToContext(
            eos=self.submit(Sus2EosWorkChain, model=screener, targets=dump(screening.eos), **reference, **where),
            adsorption=self.submit(Sus2AdsorptionWorkChain, model=screener, targets=dump(screening.adsorption),
                                   labeler=self.ctx.labeler, **where),
            mof=self.submit(Sus2MofWorkChain, model=screener, targets=dump(screening.mof), **where))

    def results(self) -> Any:
        """The campaign's result document."""
        for name in ("eos", "adsorption", "mof"):
            if not self.ctx[name].is_finished_ok:
                return _sub_process_failed(self.ctx[name])
        learned = self.ctx.learner.outputs
        result, node = functions.campaign_result.run_get_node(
            spec=self.inputs.spec, learned=learned.learned, eos=self.ctx.eos.outputs.screening,
            adsorption=self.ctx.adsorption.outputs.screening, screened_by=self.ctx.screener,
            mof=self.ctx.mof.outputs.screening, **_workspace_args(self.inputs))
        if not node.is_finished_ok:
            return _function_failed(node)
        self.out("result", result)
        self.out("model", learned.model)
        self.out("dataset", learned.dataset)
        for name in ("eos", "adsorption", "mof"):
            self.out(name, self.ctx[name].outputs.screening)
        return None
