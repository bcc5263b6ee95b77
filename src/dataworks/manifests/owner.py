"""The owner of a child object, for any registered kind (pure layer).

Every child carries an ownerReference with `controller: true`, so the garbage
collector removes it with its owner and the operator runtime routes its
events back to the right controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataworks.api.meta import KindInfo


@dataclass(frozen=True)
class Owner:
    """The object that owns the children being built."""

    info: KindInfo
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.info.api_version,
            "kind": self.info.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def labels(self) -> dict[str, str]:
        """The label that names the owner on each child (e.g. dataworks.io/pipeline: NAME)."""
        return {self.info.owner_label: self.name}
