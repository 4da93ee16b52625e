"""The settings every Rebond service inherits: one base instead of a block copied in each.

- `FromEnvironment` reads `<PREFIX>_*` variables (each subclass names its prefix), where any
  setting may instead come from a file that `<PREFIX>_<NAME>_FILE` names: a Kubernetes or
  Docker secret mounted as a file (`INTAKE_ERASURE_KEY_FILE=/run/secrets/erasure-key`). The file
  wins over the variable, and its surrounding whitespace (the newline editors add) is dropped.
  pydantic-settings' own `secrets_dir` cannot say this: it reads a file named after each field
  in one folder, so the variable naming the file, which operators set today, would stop working.
  Hence `FileVariables`, a settings source of a few lines on top of pydantic-settings' own
  environment source (aliases, complex values as JSON, case rules: all as for the variable).
  A variable without the prefix that every process of a machine shares
  (`KAFKA_BOOTSTRAP_SERVERS`) is the fallback of the field that declares it
  (`shared_variables`).
- `ServiceSettings` holds what every service has: its environment, where it listens (host, port,
  and an internal port for operators), its log level and OpenTelemetry. In production it refuses
  what `production_problems` lists, all at once, so an operator fixes everything in one go: the
  development values of the service's secrets (`development_defaults`, declared by each
  service: the value shipped for development, or anything shorter than 32 characters).
- `KafkaServiceSettings` adds the Kafka connection (`rebond_kafka.settings.KafkaClientSettings`)
  and production's Kafka requirements (`kafka_production_problems`).

Every check runs while the settings are read, so a service so configured stops before it opens
any connection, with a message naming each variable to change.
"""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from rebond_kafka.settings import KafkaClientSettings, kafka_production_problems

Environment = Literal["development", "test", "production"]
#: The shortest secret production accepts (an HMAC key, a token): 32 characters.
MIN_SECRET_CHARS = 32
#: A development value: a string, or a mapping whose values are development keys.
DevelopmentValue = str | Mapping[str, str]


class _FileContents(Mapping[str, str | None]):
    """`name` -> the content of the file that the variable `name` + `suffix` names, read only
    when pydantic-settings asks for `name` (it asks only for its fields' variables): a
    `*_FILE` variable meant for another program (`KAFKA_CREDENTIALS_FILE`) is never opened."""

    def __init__(self, environ: Mapping[str, str | None], suffix: str) -> None:
        self._environ = environ
        self._suffix = suffix

    def __getitem__(self, name: str) -> str:
        variable = name + self._suffix
        path = self._environ.get(variable)
        if path is None:
            raise KeyError(name)
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise SettingsError(
                f"{variable.upper()} names {path}, which cannot be read: "
                f"{error.strerror or type(error).__name__}"
            ) from error

    def __iter__(self) -> Iterator[str]:
        cut = len(self._suffix)
        return (name[:-cut] for name in self._environ if name.endswith(self._suffix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class FileVariables(EnvSettingsSource):
    """`<NAME>_FILE=<path>` sets the setting whose variable is `<NAME>` to the file's content."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = super()._load_env_vars()  # the environment, case-folded as the settings say
        return _FileContents(environ, "_FILE" if self.case_sensitive else "_file")


class SharedVariables(PydanticBaseSettingsSource):
    """The unprefixed variables named by the settings' `shared_variables` (field -> variable),
    read after the prefixed ones: `INTAKE_KAFKA_BOOTSTRAP_SERVERS`, else
    `KAFKA_BOOTSTRAP_SERVERS`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = getattr(self.settings_cls, "shared_variables", {}).get(field_name)
        return (os.environ.get(variable) if variable else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


class FromEnvironment(BaseSettings):
    """Settings read from `<PREFIX>_*` variables (the subclass's `env_prefix`), each of them
    from a file when `<PREFIX>_<NAME>_FILE` names one, and from `shared_variables` last."""

    #: Field -> an unprefixed variable read when the prefixed one is not set.
    shared_variables: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier wins: arguments (tests), then files, then variables, then shared variables.
        return (
            init_settings,
            FileVariables(settings_cls),
            env_settings,
            dotenv_settings,
            SharedVariables(settings_cls),
            file_secret_settings,
        )


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class ServiceSettings(FromEnvironment):
    """What every service reads: its environment, where it listens, logs and traces; and, in
    production, the refusal of whatever `production_problems` finds."""

    model_config = SettingsConfigDict(extra="ignore")

    #: Field -> the development value production refuses (for a mapping: any of its values).
    development_defaults: ClassVar[Mapping[str, DevelopmentValue]] = {}

    #: `production` turns on the refusals below; `test` and `development` refuse nothing.
    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    #: A second port for operators (`/metrics`, `/openapi.json`, where the service serves it:
    #: `rebond_http.private`). Unset: they answer on the public port in development and test,
    #: and nowhere in production.
    internal_port: int | None = Field(default=None, ge=1, le=65535)
    internal_host: str = "127.0.0.1"
    log_level: str = "INFO"
    #: Export the spans with OpenTelemetry (OTLP over HTTP); the `traceparent` header is
    #: propagated and the trace id logged either way.
    otel_enabled: bool = False
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if unknown := set(cls.development_defaults) - set(cls.model_fields):
            raise TypeError(f"{cls.__name__}.development_defaults names no field: {unknown}")

    @property
    def prefix(self) -> str:
        return str(self.model_config.get("env_prefix", ""))

    @property
    def internal_public(self) -> bool:
        """Whether the operators' paths answer on the public port (no internal port, and not in
        production)."""
        return self.internal_port is None and self.environment != "production"

    def production_problems(self) -> list[str]:
        """What production refuses in these settings, each naming the variable to change."""
        return development_values(self)

    @model_validator(mode="after")
    def _internal_port_of_its_own(self) -> Self:
        if self.internal_port is not None and self.internal_port == self.port:
            raise ValueError(f"{self.prefix}INTERNAL_PORT must differ from {self.prefix}PORT")
        return self

    @model_validator(mode="after")
    def _refused_in_production(self) -> Self:
        if self.environment == "production" and (problems := self.production_problems()):
            raise ValueError(
                f"{self.prefix}ENVIRONMENT=production refuses these settings: {'; '.join(problems)}"
            )
        return self


def development_values(settings: ServiceSettings) -> list[str]:
    """The settings of `settings.development_defaults` still at a development value: the value
    itself or, for a secret, anything shorter than `MIN_SECRET_CHARS`; for a mapping of keys,
    any development key among its values."""
    problems = []
    for name, development in settings.development_defaults.items():
        variable = f"{settings.prefix}{name.upper()}"
        value = getattr(settings, name)
        if isinstance(development, Mapping):
            given = {_plain(v) for v in value.values()} if isinstance(value, Mapping) else set()
            if given & set(development.values()):
                problems.append(f"{variable} (or {variable}_FILE) holds development keys (refused)")
        elif (plain := _plain(value)) == development or len(str(plain)) < MIN_SECRET_CHARS:
            problems.append(
                f"{variable} (or {variable}_FILE) must be set to a secret of at least "
                f"{MIN_SECRET_CHARS} characters (the development value is refused)"
            )
    return problems


class KafkaServiceSettings(ServiceSettings, KafkaClientSettings):
    """A service that talks to Kafka: its connection (`<PREFIX>_KAFKA_*`), checked in
    production (SASL_SSL with SCRAM and both credentials: `kafka_production_problems`)."""

    shared_variables: ClassVar[Mapping[str, str]] = {
        "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS"
    }

    #: `<PREFIX>_KAFKA_BOOTSTRAP_SERVERS`, else `KAFKA_BOOTSTRAP_SERVERS`.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"

    def production_problems(self) -> list[str]:
        return [*kafka_production_problems(self), *super().production_problems()]
