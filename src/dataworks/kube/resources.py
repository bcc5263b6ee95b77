"""The dataworks custom resources as lightkube generic resources (I/O edge).

Importing this module registers them, so `lightkube.codecs.from_dict` can
load a Pipeline manifest.
"""

from __future__ import annotations

from lightkube.generic_resource import create_namespaced_resource

from dataworks.api import pipeline as api

Pipeline = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)
