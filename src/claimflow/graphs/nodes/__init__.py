"""One module per graph node; each ``make_*`` returns the node function for a Components set."""

from claimflow.graphs.nodes.check_worthiness import make_check_worthiness
from claimflow.graphs.nodes.evidence_stance import make_evidence_stance
from claimflow.graphs.nodes.justify import make_justify
from claimflow.graphs.nodes.veracity import make_veracity

__all__ = ["make_check_worthiness", "make_evidence_stance", "make_justify", "make_veracity"]
