"""The public edge's settings, the same in every service that has one, under its own prefix
(`INTAKE_TRUSTED_PROXIES`, `EVENTS_TRUSTED_PROXIES`, …): a service's settings class derives
from `EdgeSettings` and sets its `env_prefix`. The console, behind its authenticating proxy,
has the trusted proxies alone (`ProxySettings`, `COORDINATION_TRUSTED_PROXIES`). The internal
port for operators, which every service has, is the settings base's
(`rebond_service.settings.ServiceSettings`)."""

from typing import Annotated, Any, Self

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode


class ProxySettings(BaseSettings):
    #: Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` is believed: the ingress or load
    #: balancer in front of the service. Empty: the TCP peer is the client (`rebond_http.clients`).
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = []

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class EdgeSettings(ProxySettings):
    #: Largest accepted request body, in bytes (`413` above).
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    #: Requests with a body (`POST`, `PUT`, `PATCH`) allowed per client and per minute (refill
    #: rate); 0 disables the limit (refused in production).
    rate_limit_per_minute: float = Field(default=20.0, ge=0)
    #: Requests a client may send in a burst before the rate applies.
    rate_limit_burst: int = Field(default=10, ge=1)
    #: `Strict-Transport-Security: max-age=…` on every answer when above 0; set it only when
    #: people reach the service over HTTPS (e.g. 31536000, a year).
    hsts_max_age_s: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _edge_safe(self) -> Self:
        prefix = str(self.model_config.get("env_prefix", ""))
        if getattr(self, "environment", None) == "production" and self.rate_limit_per_minute == 0:
            raise ValueError(f"{prefix}RATE_LIMIT_PER_MINUTE may not be 0 in production")
        return self
