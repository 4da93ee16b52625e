"""Rebond's service host: the settings base every service inherits (`rebond_service.settings`)
and the host that runs a service's lifespan and answers its probes (`rebond_service.host`)."""
