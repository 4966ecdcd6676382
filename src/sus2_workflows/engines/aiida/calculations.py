"""``sus2 train`` as an AiiDA ``CalcJob`` (entry point ``sus2.train`` in ``aiida.calculations`` and
``aiida.parsers``), so training runs on any computer AiiDA reaches — a GPU node of a cluster through its scheduler —
with the dataset uploaded from the repository and the model brought back as :class:`~.data.ModelData`.  The code is
the ``sus2`` executable of an installation of this package on that computer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob
from aiida.parsers import Parser

from ...documents import ModelDocument, atoms_from_dict
from .data import DatasetData, ModelData
from .profiles import config_folder

DATA_FILE = "train.extxyz"
CONFIG_FILE = "config.yaml"
RUN_FOLDER = "run"  # sus2 train's --out
MODEL_FILE = "model.pt"  # the native model file in it
REPORT_FILE = "train.json"  # sus2 train's standard output: its report
REPORT_KEYS = ("model_hash", "dataset_hash", "parameters")  # what the parser reads from it


class Sus2TrainCalculation(CalcJob):
    """Train a SUS2 model on a labelled dataset with ``sus2 train`` (its defaults, or the ``training`` settings of a
    campaign spec / ``sus2 train --config``)."""

    @classmethod
    def define(cls, spec: Any) -> None:
        """The dataset and training settings in; the model out; exit codes of a failed or unreadable run."""
        super().define(spec)
        spec.input("dataset", valid_type=DatasetData, help="the labelled structures to train on")
        spec.input("training", valid_type=orm.Dict, required=False, help="sus2 train config entries (none: defaults)")
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["parser_name"].default = "sus2.train"
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.output("model", valid_type=ModelData, help="the trained model")
        spec.output("report", valid_type=orm.Dict, help="sus2 train's report: errors, epochs, time, stop reason")
        spec.exit_code(310, "ERROR_TRAINING_FAILED", message="sus2 train wrote no report: {stderr}")
        spec.exit_code(320, "ERROR_NO_MODEL", message="sus2 train wrote no model file")

    def prepare_for_submission(self, folder: Any) -> CalcInfo:
        """Write the dataset (extended XYZ) and the config; run ``sus2 train`` on them; retrieve report and model."""
        from sus2_model.io import write_structures

        structures = [atoms_from_dict(d) for d in self.inputs.dataset.document.structures]
        write_structures(Path(folder.abspath) / DATA_FILE, structures)
        training = self.inputs.training.get_dict() if "training" in self.inputs else {}
        with folder.open(CONFIG_FILE, "w") as handle:
            yaml.safe_dump(training, handle)
        code = CodeInfo()
        code.code_uuid = self.inputs.code.uuid
        code.cmdline_params = ["train", "--train", DATA_FILE, "--config", CONFIG_FILE, "--out", RUN_FOLDER]
        code.stdout_name = REPORT_FILE
        info = CalcInfo()
        info.codes_info = [code]
        info.retrieve_list = [REPORT_FILE, f"{RUN_FOLDER}/{MODEL_FILE}"]  # the model lands beside the report
        return info


class Sus2TrainParser(Parser):
    """The model and report of a ``sus2 train`` run; the model file is also kept, by content hash, under the
    AiiDA configuration folder's ``models`` (a :class:`~.data.ModelData` names where its file is used)."""

    def parse(self, **kwargs: Any) -> Any:
        """``model`` and ``report`` from the retrieved files."""
        from sus2_model.io.atomic import atomic_write

        retrieved = self.retrieved
        files = retrieved.base.repository.list_object_names()
        if REPORT_FILE not in files:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(stderr="no report file")
        try:
            report = json.loads(retrieved.base.repository.get_object_content(REPORT_FILE))
        except json.JSONDecodeError:
            report = None
        if not isinstance(report, dict) or not all(key in report for key in REPORT_KEYS):
            stderr = retrieved.base.repository.get_object_content("_scheduler-stderr.txt") \
                if "_scheduler-stderr.txt" in files else ""
            return self.exit_codes.ERROR_TRAINING_FAILED.format(stderr=stderr[-1000:])
        if MODEL_FILE not in files:  # retrieved without its folder
            return self.exit_codes.ERROR_NO_MODEL
        content = retrieved.base.repository.get_object_content(MODEL_FILE, mode="rb")
        path = config_folder() / "models" / f"{report['model_hash']}{Path(MODEL_FILE).suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(content), mode="wb")
        dataset = self.node.inputs.dataset.document
        config = {"train": [DATA_FILE], **(self.node.inputs.training.get_dict() if "training" in self.node.inputs
                                           else {})}
        document = ModelDocument(
            model_path=str(path), model_hash=report["model_hash"], dataset_hash=dataset.dataset_hash,
            training_data_hash=report["dataset_hash"], training_config=config, parameters=report["parameters"],
            metrics={k: v for k, v in report.items() if k.startswith("valid")})
        self.out("model", ModelData(document))
        self.out("report", orm.Dict(report))
        return None
