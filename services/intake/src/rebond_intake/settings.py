"""Intake's settings, read from `INTAKE_*` environment variables."""

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("INTAKE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    #: How long a submission may wait for Kafka's acknowledgement before the person gets a 503.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    #: What `Retry-After` tells a person when Kafka is unreachable.
    retry_after_s: int = Field(default=10, ge=1)
    log_level: str = "INFO"
