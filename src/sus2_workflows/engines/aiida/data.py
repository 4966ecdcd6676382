"""AiiDA data types of a campaign (entry points ``sus2.document``, ``sus2.dataset``, ``sus2.model``).

Documents travel as exact JSON in the node's repository: AiiDA rounds every float it stores in attributes or in
``Dict``/``List`` nodes to 14 significant digits, which would change the content hashes every engine must agree on.
Attributes hold only what queries need (kind, hashes, counts, species)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from aiida.orm import SinglefileData
from aiida.orm.nodes.caching import NodeCaching
from monty.json import MontyDecoder

from ...documents import DatasetDocument, ModelDocument, without_fields
from ...hashing import content_key
from ...serialization import MsonableModel

VOLATILE = ("created", "n_computed")  # fields that say when, and how much of it, a document was computed: not what


def _json_bytes(value: Any) -> bytes:
    """``value`` (a campaign document or plain JSON values) as canonical JSON bytes."""
    data = value.as_dict() if isinstance(value, MsonableModel) else value
    return json.dumps(data, sort_keys=True, allow_nan=False).encode()


class DocumentCaching(NodeCaching):
    """A document node's hash (what AiiDA's caching matches process inputs by): its class and content, without the
    :data:`VOLATILE` fields, so the same dataset, model or result made again is the same input."""

    def get_objects_to_hash(self) -> dict[str, Any]:
        """Class and content key of the document."""
        return {"class": str(self._node.__class__), "content": content_key(without_fields(self._node.data(), VOLATILE))}


def _plain(value: Any) -> Any:
    """A numpy/torch scalar as the Python value an attribute can hold."""
    return value.item() if hasattr(value, "item") else value


class DocumentData(SinglefileData):
    """A campaign document (or a list of structures) as exact JSON; attribute ``kind`` names its class."""

    FILENAME = "document.json"
    _CLS_NODE_CACHING = DocumentCaching

    def __init__(self, value: Any = None, **kwargs: Any) -> None:
        if value is not None:
            kwargs.update(file=io.BytesIO(_json_bytes(value)), filename=self.FILENAME)
        super().__init__(**kwargs)
        if value is not None:
            self.base.attributes.set("kind", type(value).__name__)
            for name in ("dataset_hash", "dbs_hash", "model_hash", "spec_hash"):
                if isinstance(getattr(value, name, None), str):
                    self.base.attributes.set(name, getattr(value, name))

    @property
    def kind(self) -> str:
        """The class of the value it holds (e.g. ``EosScreeningDocument``, ``list``)."""
        return self.base.attributes.get("kind")

    def data(self) -> Any:
        """The JSON it holds."""
        return json.loads(self.get_content("rb"))

    @property
    def value(self) -> Any:
        """The document (its pydantic class) or plain JSON value it holds."""
        return MontyDecoder().process_decoded(self.data())


class DatasetData(DocumentData):
    """A labelled dataset (:class:`~sus2_workflows.documents.DatasetDocument`): its structures with their labels."""

    def __init__(self, value: DatasetDocument | None = None, **kwargs: Any) -> None:
        super().__init__(value, **kwargs)
        if value is not None:
            elements = sorted({s for d in value.structures for s in d.get("symbols", [])})
            for name, item in (("n_structures", value.n_structures), ("n_atoms", value.n_atoms),
                               ("labeler", value.labeler), ("elements", elements)):
                self.base.attributes.set(name, item)

    @property
    def document(self) -> DatasetDocument:
        """The dataset document."""
        return self.value


class ModelData(SinglefileData):
    """A trained SUS2 model: the model file itself in the repository (never a path), its species, hyperparameters,
    tasks and content hash as attributes, and its :class:`~sus2_workflows.documents.ModelDocument` (exact JSON, a
    string attribute)."""

    _CLS_NODE_CACHING = DocumentCaching

    def __init__(self, document: ModelDocument | None = None, **kwargs: Any) -> None:
        if document is not None:
            path = Path(document.model_path).resolve()
            kwargs.update(file=str(path), filename=f"model{path.suffix}")
        super().__init__(**kwargs)
        if document is not None:
            from sus2_model.predict import load_model

            model = load_model(document.model_path, document.species)
            self.base.attributes.set_many({
                "model_hash": document.model_hash, "species": list(model.species or []), "tasks": list(model.tasks),
                "task": document.task, "parameters": document.parameters,
                "hyperparameters": {k: _plain(v) for k, v in {**model.hyper, "max_dist": model.r_cut}.items()},
                "document": _json_bytes(document).decode()})

    @property
    def model_hash(self) -> str:
        """Content hash of the model (species, tasks, hyperparameters, parameters)."""
        return self.base.attributes.get("model_hash")

    def data(self) -> dict[str, Any]:
        """The model document's JSON (its content hash names the model file's content)."""
        return json.loads(self.base.attributes.get("document"))

    def document(self) -> ModelDocument:
        """The model document; its model file is written back from the repository where it is missing (e.g. after
        ``verdi archive import`` on another machine)."""
        document = ModelDocument.from_dict(self.data())
        path = Path(document.model_path)
        if not path.exists():
            from sus2_model.io.atomic import atomic_write

            path.parent.mkdir(parents=True, exist_ok=True)
            content = self.get_content("rb")
            atomic_write(path, lambda handle: handle.write(content), mode="wb")
        return document
