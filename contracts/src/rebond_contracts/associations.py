"""The associations of the grouping: the only routing targets (see shared/domain.md)."""

from enum import StrEnum


class AssociationId(StrEnum):
    """Stable identifiers; they name each association's referral and response topics."""

    SOS_ENTREPRENEUR = "sos-entrepreneur"
    SECOND_SOUFFLE = "second-souffle"
    SOIXANTE_MILLE_REBONDS = "60000-rebonds"
    RE_CREER = "re-creer"
    APESA = "apesa"


#: How each association is named to people.
ASSOCIATION_NAMES: dict[AssociationId, str] = {
    AssociationId.SOS_ENTREPRENEUR: "SOS Entrepreneur",
    AssociationId.SECOND_SOUFFLE: "Second Souffle",
    AssociationId.SOIXANTE_MILLE_REBONDS: "60 000 rebonds",
    AssociationId.RE_CREER: "Re-créer",
    AssociationId.APESA: "APESA",
}

#: Associations that serve only people who said they are in distress (the router's directory
#: marks them `distress_only`; a router test keeps the two equal). Naming one tells that the
#: person is in distress (health data, GDPR art. 9): public pages never do.
DISTRESS_ASSOCIATIONS: frozenset[AssociationId] = frozenset({AssociationId.APESA})
