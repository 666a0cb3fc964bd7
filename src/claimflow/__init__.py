"""claimflow: automated fact-checking on local models.

>>> from claimflow import verify
>>> result = verify("Drinking water cures COVID-19.", ["There is no cure for COVID-19."])
>>> result.veracity.label
"""

from claimflow._version import __version__
from claimflow.config import PipelineConfig
from claimflow.errors import ClaimflowError
from claimflow.types import (
    EvidenceStance,
    Justification,
    Justifications,
    LabelScores,
    Provenance,
    VerificationResult,
)
from claimflow.verifier import Verifier, verify

__all__ = [
    "ClaimflowError",
    "EvidenceStance",
    "Justification",
    "Justifications",
    "LabelScores",
    "PipelineConfig",
    "Provenance",
    "VerificationResult",
    "Verifier",
    "__version__",
    "verify",
]
