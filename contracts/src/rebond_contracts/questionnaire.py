"""The public questionnaire, version 1, exactly as shared/questionnaire.md defines it.

Validation errors raised here carry stable `type` codes (e.g. ``department_region_mismatch``)
so that intake can explain them in the person's language. Errors found across fields (model
validators) name the faulty field, relative to the model, in their context as ``field``.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rebond_contracts.geography import REGION_OF_DEPARTMENT, REGIONS


class Distress(StrEnum):
    YES = "yes"
    NO = "no"
    PREFER_NOT_TO_SAY = "prefer_not_to_say"


class Stage(StrEnum):
    PRE_PROCEDURE = "pre_procedure"
    AMICABLE_PROCEDURE = "amicable_procedure"
    SAFEGUARD = "safeguard"
    RECEIVERSHIP = "receivership"
    LIQUIDATION_IN_PROGRESS = "liquidation_in_progress"
    AFTER_LIQUIDATION = "after_liquidation"
    PROFESSIONAL_RECOVERY = "professional_recovery"
    UNSURE = "unsure"


class CompanySize(StrEnum):
    NONE = "0"
    MICRO = "1-9"
    SMALL = "10-49"
    MEDIUM = "50-249"
    LARGE = "250+"


class Need(StrEnum):
    LISTENING = "listening"
    URGENT_FINANCIAL_LEGAL = "urgent_financial_legal"
    PEER_SUPPORT = "peer_support"
    MENTORING = "mentoring"
    COACHING = "coaching"
    SALARIED_JOB = "salaried_job"
    NEW_BUSINESS = "new_business"
    UNDERSTAND_PROCEDURES = "understand_procedures"


class PreferredChannel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class Locale(StrEnum):
    FR = "fr"
    EN = "en"


Sector = Literal[
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K",
    "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U",
]  # fmt: skip
Region = Literal[
    "11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94",
    "01", "02", "03", "04", "06", "other",
]  # fmt: skip
assert set(Region.__args__) == set(REGIONS)  # type: ignore[attr-defined]

#: A French number (0X XX XX XX XX, separators allowed) or an international E.164 number.
PHONE_PATTERN = r"^(?:\+[1-9][0-9]{7,14}|0[1-9](?:[ .-]?[0-9]{2}){4})$"

MESSAGE_MAX_LENGTH = 600
NEEDS_MAX = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Situation(_Strict):
    stage: Stage
    company_size: CompanySize
    sector: Sector | None = None
    region: Region
    department: str | None = Field(
        default=None,
        description="French department code (01…95, 2A, 2B, 971…976), consistent with region.",
        examples=["33"],
    )

    @field_validator("department")
    @classmethod
    def _known_department(cls, value: str | None) -> str | None:
        if value is not None and value not in REGION_OF_DEPARTMENT:
            raise PydanticCustomError(
                "unknown_department", "Unknown department code {department}", {"department": value}
            )
        return value

    @model_validator(mode="after")
    def _department_in_region(self) -> "Situation":
        if self.department is not None and REGION_OF_DEPARTMENT[self.department] != self.region:
            raise PydanticCustomError(
                "department_region_mismatch",
                "Department {department} is not in region {region}",
                {"department": self.department, "region": self.region, "field": "department"},
            )
        return self


class Contact(_Strict):
    first_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)
    ]
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(pattern=PHONE_PATTERN)] | None = None
    preferred_channel: PreferredChannel

    @model_validator(mode="after")
    def _chosen_channel_filled(self) -> "Contact":
        if getattr(self, self.preferred_channel.value) is None:
            raise PydanticCustomError(
                "preferred_channel_empty",
                "The preferred channel {channel} must be filled",
                {"channel": self.preferred_channel.value, "field": self.preferred_channel.value},
            )
        return self


class Consents(_Strict):
    share_with_association: StrictBool
    sensitive_data: StrictBool
    statistics: StrictBool
    event_invitations: StrictBool


class QuestionnaireV1(_Strict):
    """What the public portal posts to `POST /v1/submissions`."""

    distress: Distress
    situation: Situation
    needs: Annotated[list[Need], Field(min_length=1, max_length=NEEDS_MAX)]
    contact: Contact | None = None
    message: Annotated[str, Field(max_length=MESSAGE_MAX_LENGTH)] | None = None
    consents: Consents
    locale: Locale = Locale.FR

    @field_validator("needs")
    @classmethod
    def _distinct_needs(cls, value: list[Need]) -> list[Need]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("needs_not_distinct", "Each need may be given only once")
        return value

    @model_validator(mode="after")
    def _contact_exactly_when_shared(self) -> "QuestionnaireV1":
        if self.consents.share_with_association and self.contact is None:
            raise PydanticCustomError(
                "contact_required",
                "Contact details are required to share with an association",
                {"field": "contact"},
            )
        if not self.consents.share_with_association and self.contact is not None:
            raise PydanticCustomError(
                "contact_without_consent",
                "Contact details are only accepted when sharing with an association is consented",
                {"field": "contact"},
            )
        return self


EXAMPLE_QUESTIONNAIRE: dict[str, object] = {
    "distress": "no",
    "situation": {
        "stage": "after_liquidation",
        "company_size": "1-9",
        "sector": "G",
        "region": "75",
        "department": "33",
    },
    "needs": ["mentoring", "new_business"],
    "contact": {
        "first_name": "Claire",
        "email": "claire@example.org",
        "phone": None,
        "preferred_channel": "email",
    },
    "message": "Liquidation clôturée en mars, je veux relancer une activité.",
    "consents": {
        "share_with_association": True,
        "sensitive_data": False,
        "statistics": True,
        "event_invitations": True,
    },
    "locale": "fr",
}
