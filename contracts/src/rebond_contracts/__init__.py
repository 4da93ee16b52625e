"""Rebond's shared contracts: the event envelope, payload models and the topic registry."""

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope, EnvelopeError
from rebond_contracts.topics import Service, Topic

__all__ = ["AssociationId", "Envelope", "EnvelopeError", "Service", "Topic"]
