"""Labels that children of every kind carry (pure layer).

A child names its owner with the owner kind's label (`KindInfo.owner_label`,
e.g. dataworks.io/pipeline), and its part of the owner with these.
"""

from __future__ import annotations

LABEL_STEP = "dataworks.io/step"
LABEL_STEP_TYPE = "dataworks.io/step-type"
LABEL_ATTEMPT = "dataworks.io/attempt"
JOB_NAME = "batch.kubernetes.io/job-name"  # set by the Job controller on its pods
