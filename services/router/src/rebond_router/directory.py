"""The association directory: versioned configuration, checked at start-up.

`directory.yaml` (beside this module, or `ROUTER_DIRECTORY_PATH`) lists each association with
the stages and needs it serves, where it has antennas, the company sizes it takes, its weekly
capacity, whether it is paused and how long it has to answer, plus the scoring weights. Its
`version` is the rule-set version every decision records.

An association may list `antennas` (name, departments, e-mail, optional webhook): a referral of
a person whose department one of them covers is for that antenna (`ReferralV1.antenna`), which
the notifier writes to instead of the association's address. A department belongs to at most
one antenna of an association, so that a referral has one recipient, never a guess.

Capacity is a limit unless an association says `capacity: soft`, and equal scores are ordered
by the directory's own `tie_break` list, which always ends with `directory_order`: a ranking is
total, and every tie it breaks is broken by a criterion someone wrote down (`scoring`).
"""

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rebond_contracts.associations import AssociationId
from rebond_contracts.datafile import yaml_mapping
from rebond_contracts.geography import REGION_OF_DEPARTMENT, REGIONS
from rebond_contracts.payloads import AntennaV1
from rebond_contracts.questionnaire import CompanySize, Need, Stage

DEFAULT_PATH = Path(__file__).with_name("directory.yaml")
#: Validation context of a directory read from a file (`parse_directory`).
FROM_FILE = "from_file"


def _region_code(value: str) -> str:
    if value not in REGIONS or value == "other":
        raise ValueError(
            f"{value!r} is not an INSEE region code ({', '.join(sorted(REGIONS)[:-1])})"
        )
    return value


RegionCode = Annotated[str, AfterValidator(_region_code)]


def _department_code(value: str) -> str:
    if value not in REGION_OF_DEPARTMENT:
        raise ValueError(f"{value!r} is not a French department code (01…95, 2A, 2B, 971…976)")
    return value


DepartmentCode = Annotated[str, AfterValidator(_department_code)]


class TieBreak(StrEnum):
    """What orders two associations of equal score, in the directory's `tie_break` order."""

    #: Fewer stages served (all serve the person's own): the specialist of their situation.
    SPECIALIST = "specialist"
    #: An antenna in the person's region rather than national reach.
    REGION_ANTENNA = "region_antenna"
    #: More places left this week.
    CAPACITY_LEFT = "capacity_left"
    #: Earlier in `directory.yaml`: the last resort, so that every ranking is total.
    DIRECTORY_ORDER = "directory_order"


DEFAULT_TIE_BREAK = (
    TieBreak.SPECIALIST,
    TieBreak.REGION_ANTENNA,
    TieBreak.CAPACITY_LEFT,
    TieBreak.DIRECTORY_ORDER,
)


@dataclass(frozen=True)
class Problem:
    """One reason a directory is refused: the association (its id, or `#n` for the n-th entry
    without one; None outside `associations`), the field (dotted path) and what is wrong."""

    association: str | None
    field: str
    message: str

    def __str__(self) -> str:
        if self.association is None:
            return f"field {self.field!r}: {self.message}"
        return f"association {self.association!r}, field {self.field!r}: {self.message}"


class DirectoryError(ValueError):
    """The directory cannot be used; the message names the association and the field, and
    `problems` holds each (empty when the text is not even a YAML mapping)."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Strict):
    """Points given by each scoring criterion (see scoring.py)."""

    need: float = Field(ge=0)
    antenna_in_region: float = Field(ge=0)
    national: float = Field(ge=0)
    size_fit: float = Field(ge=0)
    capacity: float = Field(ge=0)
    distress: float = Field(ge=0)


class Antenna(AntennaV1):
    """An antenna as the directory lists it: what referrals carry (`AntennaV1`: name, e-mail,
    webhook) and the departments it serves, which decide who gets a referral."""

    departments: list[DepartmentCode] = Field(min_length=1)

    @field_validator("departments")
    @classmethod
    def _each_department_once(cls, departments: list[str]) -> list[str]:
        if repeated := sorted({d for d in departments if departments.count(d) > 1}):
            raise ValueError(f"lists a department twice: {', '.join(repeated)}")
        return departments

    def contact(self) -> AntennaV1:
        """What a referral carries of it (the departments stay in the directory)."""
        return AntennaV1.model_validate(self.model_dump(exclude={"departments"}))


class Association(_Strict):
    id: AssociationId
    name: str = Field(min_length=1)
    stages: list[Stage] = Field(min_length=1)
    needs: list[Need] = Field(min_length=1)
    regions: list[RegionCode] = []
    national: bool = False
    company_sizes: list[CompanySize] = Field(min_length=1)
    weekly_capacity: int = Field(ge=0)
    #: `hard`: at its weekly capacity it gets nothing new; `soft`: it only scores less.
    capacity: Literal["hard", "soft"] = "hard"
    paused: bool = False
    distress_only: bool = False
    response_deadline_days: float = Field(gt=0)
    reminder_days_before_deadline: float = Field(ge=0)
    #: Where its referrals go by the person's department; none: the association's own address.
    antennas: list[Antenna] = []
    #: The coordinators' override these values come from (`rebond_router.overrides`), recorded
    #: in each decision's scores; never written in `directory.yaml`.
    override_id: UUID | None = None

    @field_validator("override_id")
    @classmethod
    def _not_in_the_file(cls, value: UUID | None, info: ValidationInfo) -> UUID | None:
        if value is not None and info.context and info.context.get(FROM_FILE):
            raise ValueError("is set by the coordinators' overrides, never in directory.yaml")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "Association":
        if not self.national and not self.regions:
            raise ValueError("needs at least one region, or national: true")
        if self.reminder_days_before_deadline >= self.response_deadline_days:
            raise ValueError(
                "reminder_days_before_deadline must be smaller than response_deadline_days"
            )
        return self

    @field_validator("antennas")
    @classmethod
    def _one_antenna_per_department(cls, antennas: list[Antenna]) -> list[Antenna]:
        """One recipient per department: a department in two antennas would leave the router
        to guess whose referral it is, and a name twice would make an antenna ambiguous."""
        names = [a.name for a in antennas]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"antenna names listed twice: {', '.join(repeated)}")
        owner: dict[str, str] = {}
        for antenna in antennas:
            for department in antenna.departments:
                if department in owner:
                    raise ValueError(
                        f"department {department} is in two antennas "
                        f"({owner[department]!r} and {antenna.name!r})"
                    )
                owner[department] = antenna.name
        return antennas

    def antenna_for(self, department: str | None) -> Antenna | None:
        """The antenna serving `department`, or None (no department, or none serves it)."""
        if department is None:
            return None
        return next((a for a in self.antennas if department in a.departments), None)

    @property
    def response_deadline(self) -> timedelta:
        return timedelta(days=self.response_deadline_days)

    @property
    def reminder_before(self) -> timedelta | None:
        """How long before the deadline the reminder goes out; None when there is none."""
        if self.reminder_days_before_deadline == 0:
            return None
        return timedelta(days=self.reminder_days_before_deadline)

    def serves_region(self, region: str) -> bool:
        return self.national or region in self.regions


class Directory(_Strict):
    version: str = Field(min_length=1)
    weights: Weights
    associations: list[Association] = Field(min_length=1)
    tie_break: tuple[TieBreak, ...] = DEFAULT_TIE_BREAK

    @model_validator(mode="after")
    def _each_once(self) -> "Directory":
        ids = [a.id for a in self.associations]
        if duplicates := sorted({i.value for i in ids if ids.count(i) > 1}):
            raise ValueError(f"associations listed twice: {', '.join(duplicates)}")
        return self

    @field_validator("tie_break")
    @classmethod
    def _total_tie_break(cls, rules: tuple[TieBreak, ...]) -> tuple[TieBreak, ...]:
        if len(set(rules)) != len(rules):
            raise ValueError("names a criterion twice")
        if not rules or rules[-1] is not TieBreak.DIRECTORY_ORDER:
            raise ValueError("must end with directory_order (so that every ranking is total)")
        return rules

    def get(self, association: AssociationId) -> Association:
        for entry in self.associations:
            if entry.id is association:
                return entry
        raise KeyError(association)


def parse_directory(text: str, origin: str = "directory") -> Directory:
    """Validate a directory document; `DirectoryError` lists every problem in plain words."""
    raw = yaml_mapping(text, origin, DirectoryError, "version, weights, associations")
    try:
        return Directory.model_validate(raw, context={FROM_FILE: True})
    except ValidationError as error:
        problems = tuple(_explain(raw, e) for e in error.errors())
        raise DirectoryError(f"{origin}: " + "; ".join(map(str, problems)), problems) from error


def load_directory(path: Path = DEFAULT_PATH) -> Directory:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DirectoryError(f"cannot read the association directory {path}: {error}") from error
    return parse_directory(text, str(path))


def _explain(raw: dict[str, object], error: object) -> Problem:
    """`association 're-creer', field 'weekly_capacity': Input should be ...`."""
    loc = list(error["loc"])  # type: ignore[index]
    msg = str(error["msg"])  # type: ignore[index]
    if len(loc) >= 2 and loc[0] == "associations" and isinstance(loc[1], int):
        entries = raw.get("associations")
        name = f"#{loc[1] + 1}"
        if (
            isinstance(entries, list)
            and loc[1] < len(entries)
            and isinstance(entries[loc[1]], dict)
        ):
            name = str(entries[loc[1]].get("id", name))
        return Problem(name, ".".join(str(part) for part in loc[2:]) or "<entry>", msg)
    return Problem(None, ".".join(str(part) for part in loc) or "<root>", msg)
