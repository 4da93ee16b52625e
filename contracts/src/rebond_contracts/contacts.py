"""Public contact details of the associations and the national resources, each with its source.

`contacts.yaml` (beside this module, shipped in the package) is the data; this module loads and
checks it once. Every value shown to a person carries the public page it comes from and the date
it was checked, because a wrong number given to a person in distress is worse than none
(shared/domain.md): the loader refuses a value without a source, a website that is not https, a
phone number that is not a valid French number or national short number, and an association of
the grouping that is missing.

    str(public_contact(AssociationId.APESA).website.value)  # "https://www.apesa-france.com/"
    national_resource("3114").phone.value.href  # "tel:3114"

A field whose `value` is None has no reliable public source: the page says to use the portal.
"""

from datetime import date
from functools import cache
from importlib.resources import files
from typing import Annotated, Generic, TypeVar

import phonenumbers
from phonenumbers import shortnumberinfo
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.datafile import load_yaml_model

_REGION = "FR"
#: Mainland France and the overseas departments and collectivities with French numbering.
_FRENCH_REGIONS = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


class ContactsError(ValueError):
    """The contacts file cannot be used; the message names the entry and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _https_only(url: HttpUrl) -> HttpUrl:
    if url.scheme != "https":
        raise ValueError(f"must be an https address, not {url.scheme}")
    return url


#: A web address people may follow: https only, so the page they reach is the one we cited.
HttpsUrl = Annotated[HttpUrl, AfterValidator(_https_only)]


class Phone(_Strict):
    """A French phone number or national short number, stored in one canonical form.

    `number` is E.164 (`+33123456789`) for a full number and the bare digits (`3114`) for a
    short number; `display` and `href` are derived from it, so the number a person reads and
    the one their phone dials cannot differ.
    """

    number: str

    @model_validator(mode="before")
    @classmethod
    def _from_written(cls, raw: object) -> object:
        return _parse_phone(raw)

    @property
    def is_short(self) -> bool:
        return not self.number.startswith("+")

    @property
    def display(self) -> str:
        """As French people write it: `01 23 45 67 89`, `0 805 65 50 50`, `3114`."""
        if self.is_short:
            return self.number
        parsed = phonenumbers.parse(self.number)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)

    @property
    def href(self) -> str:
        """The link target: `tel:+33123456789`, or `tel:3114` (a short number has no +33 form)."""
        return f"tel:{self.number}"


def _parse_phone(raw: object) -> object:
    """Accept the ways numbers are written in sources (`01.23.45.67.89`, `+33 1 …`, `3114`)."""
    if isinstance(raw, dict) and set(raw) == {"number"}:
        raw = raw["number"]  # the stored form is checked again: nothing skips the parser
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        return raw  # a wrong type: the model's own checks name it
    try:
        parsed = phonenumbers.parse(raw, _REGION)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{raw!r} is not a phone number: {error}") from error
    if raw.lstrip().startswith("0"):
        # Overseas numbers are written like mainland ones (0262 …, 0590 …) but carry their
        # own country code: read a national number in whichever French region it is valid.
        for region in _FRENCH_REGIONS:
            candidate = phonenumbers.parse(raw, region)
            if phonenumbers.is_valid_number_for_region(candidate, region):
                parsed = candidate
                break
    if phonenumbers.is_valid_number(parsed):
        if phonenumbers.region_code_for_number(parsed) not in _FRENCH_REGIONS:
            raise ValueError(f"{raw!r} is not a French number (mainland or overseas)")
        return {"number": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)}
    if shortnumberinfo.is_valid_short_number_for_region(parsed, _REGION):
        return {"number": phonenumbers.national_significant_number(parsed)}
    raise ValueError(f"{raw!r} is neither a valid French phone number nor a national short number")


T = TypeVar("T")


class Source(_Strict):
    """The public page a value was read on."""

    url: HttpsUrl
    title: str = Field(min_length=1)
    published: date | None = None  # the page's own date, when it shows one


class Sourced(_Strict, Generic[T]):
    """One value shown to people, the page it comes from and when someone checked it.

    The validator is the rule of domain.md made mechanical: no value without a source, and no
    empty value without a note saying what was searched.
    """

    value: T | None
    source: Source | None = None
    checked: date
    note: str | None = None  # for maintainers only, never shown to people

    @model_validator(mode="after")
    def _sourced(self) -> "Sourced[T]":
        if self.value is not None and self.source is None:
            raise ValueError("a value needs its source (url, title, published)")
        if self.value is None and not self.note:
            raise ValueError("an empty value needs a note saying what was searched")
        if self.checked > date.today():
            raise ValueError(f"checked {self.checked} is in the future")
        if self.source and self.source.published and self.source.published > self.checked:
            raise ValueError("the source is dated after the day it was checked")
        return self


class _Channels(_Strict):
    website: Sourced[HttpsUrl]
    phone: Sourced[Phone]


class PublicContact(_Channels):
    """How a person can reach one association of the grouping without going through Rebond."""

    id: AssociationId
    name: str


class NationalResource(_Channels):
    """A resource shown to everyone (the 3114, 15, 112, CIP, the court's prevention interview)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    fr: str = Field(min_length=1)
    en: str = Field(min_length=1)
    about: Source  # where the description above comes from


class Contacts(_Strict):
    associations: dict[AssociationId, _Channels]
    national: tuple[NationalResource, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> "Contacts":
        if missing := [a.value for a in AssociationId if a not in self.associations]:
            raise ValueError(f"associations missing: {', '.join(missing)}")
        ids = [resource.id for resource in self.national]
        if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"national resources listed twice: {', '.join(duplicates)}")
        return self

    def contact(self, association: AssociationId | str) -> PublicContact:
        association = AssociationId(association)
        channels = self.associations[association]
        return PublicContact(
            id=association,
            name=ASSOCIATION_NAMES[association],
            website=channels.website,
            phone=channels.phone,
        )

    def resource(self, resource_id: str) -> NationalResource:
        for resource in self.national:
            if resource.id == resource_id:
                return resource
        raise KeyError(resource_id)


def parse_contacts(text: str, origin: str = "contacts") -> Contacts:
    """Validate a contacts document; `ContactsError` lists every problem with its place."""
    return load_yaml_model(text, Contacts, origin, ContactsError)


@cache
def contacts() -> Contacts:
    """The packaged contacts, read and checked on first use and kept for the process."""
    resource = files("rebond_contracts").joinpath("contacts.yaml")
    return parse_contacts(resource.read_text(encoding="utf-8"), "contacts.yaml")


def public_contact(association_id: AssociationId | str) -> PublicContact:
    """The association's public website and phone, each with its source (values may be None)."""
    return contacts().contact(association_id)


def national_resources() -> tuple[NationalResource, ...]:
    """The national resources, in the order they are shown."""
    return contacts().national


def national_resource(resource_id: str) -> NationalResource:
    return contacts().resource(resource_id)
