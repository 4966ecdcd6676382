"""pydantic models that also speak monty's ``as_dict``/``from_dict`` protocol, so that jobflow, FireWorks and
jobflow-remote serialise them (in Makers' fields, job inputs and outputs) as objects, never as their ``str``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class MsonableModel(BaseModel):
    """A pydantic model that round-trips through ``as_dict``/``from_dict`` (monty's MSONable protocol)."""

    def as_dict(self) -> dict[str, Any]:
        """The model as JSON values, tagged with its class for :class:`monty.json.MontyDecoder`."""
        return {"@module": type(self).__module__, "@class": type(self).__name__, **self.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MsonableModel:
        """Inverse of :meth:`as_dict`."""
        return cls.model_validate({k: v for k, v in data.items() if not k.startswith("@")})
