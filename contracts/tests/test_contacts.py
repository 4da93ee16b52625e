"""Public contacts: every value shown to a person is sourced, dated and well formed."""

import copy
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebond_contracts.associations import AssociationId
from rebond_contracts.contacts import (
    Contacts,
    ContactsError,
    Phone,
    Sourced,
    contacts,
    national_resource,
    national_resources,
    parse_contacts,
    public_contact,
)

PACKAGED = Path(__file__).resolve().parents[1] / "src" / "rebond_contracts" / "contacts.yaml"


def packaged_raw() -> dict[str, Any]:
    raw = yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def every_field(data: Contacts) -> list[tuple[str, Sourced[Any]]]:
    fields: list[tuple[str, Sourced[Any]]] = []
    for association in AssociationId:
        contact = data.contact(association)
        fields += [
            (f"{association}.website", contact.website),
            (f"{association}.phone", contact.phone),
        ]
    for resource in data.national:
        fields += [
            (f"{resource.id}.website", resource.website),
            (f"{resource.id}.phone", resource.phone),
        ]
    return fields


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ContactsError) as caught:
        parse_contacts(yaml.safe_dump(raw, allow_unicode=True))
    return str(caught.value)


@pytest.mark.parametrize("association", list(AssociationId))
def test_every_association_of_the_grouping_has_an_entry(association: AssociationId) -> None:
    """Each routing target has a contact entry, named as people know it."""
    contact = public_contact(association)
    assert contact.id is association
    assert contact.name
    assert public_contact(association.value) == contact


@pytest.mark.parametrize(("place", "field"), every_field(contacts()), ids=lambda v: str(v))
def test_every_field_is_dated_and_every_value_is_sourced(place: str, field: Sourced[Any]) -> None:
    """A shown value has an https source; an empty one says what was searched; both are dated."""
    assert field.checked <= date.today(), place
    if field.value is not None:
        assert field.source is not None, place
        assert field.source.url.scheme == "https", place
        assert field.source.title, place
    else:
        assert field.note, place


def test_national_resources_are_the_ones_domain_md_names() -> None:
    """3114, 15, 112, the CIP and the court's prevention interview, each with a sourced text."""
    assert [r.id for r in national_resources()] == [
        "3114",
        "15",
        "112",
        "cip",
        "prevention-interview",
    ]
    for resource in national_resources():
        assert resource.fr and resource.en and resource.about.url.scheme == "https"


@pytest.mark.parametrize(
    ("resource", "display", "href"),
    [("3114", "3114", "tel:3114"), ("15", "15", "tel:15"), ("112", "112", "tel:112")],
)
def test_national_numbers_dial_as_short_numbers(resource: str, display: str, href: str) -> None:
    """Short numbers are shown and dialled as such, never as a +33 number that would not ring."""
    phone = national_resource(resource).phone.value
    assert phone is not None
    assert (phone.display, phone.href) == (display, href)


@pytest.mark.parametrize(
    ("written", "display", "href"),
    [
        ("01 23 45 67 89", "01 23 45 67 89", "tel:+33123456789"),
        ("0123456789", "01 23 45 67 89", "tel:+33123456789"),
        ("01.23.45.67.89", "01 23 45 67 89", "tel:+33123456789"),
        ("+33 1 23 45 67 89", "01 23 45 67 89", "tel:+33123456789"),
        ("+33 (0)1 23 45 67 89", "01 23 45 67 89", "tel:+33123456789"),
        ("06-12-34-56-78", "06 12 34 56 78", "tel:+33612345678"),
        ("0 805 65 50 50", "0 805 65 50 50", "tel:+33805655050"),
        ("0262 12 34 56", "0262 12 34 56", "tel:+262262123456"),
        ("3114", "3114", "tel:3114"),
        (3114, "3114", "tel:3114"),
    ],
)
def test_phone_numbers_are_normalised_for_display_and_links(
    written: str | int, display: str, href: str
) -> None:
    """However a source writes a number, people read the French form and dial the same number."""
    field = Sourced[Phone].model_validate(
        {
            "value": written,
            "source": {"url": "https://example.org/p", "title": "a page"},
            "checked": "2026-01-01",
        }
    )
    assert field.value is not None
    assert (field.value.display, field.value.href) == (display, href)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda raw: raw["associations"]["second-souffle"]["phone"].update(
                value="01 23 45 67 89", source=None
            ),
            "associations.second-souffle.phone: Value error, a value needs its source",
        ),
        (
            lambda raw: raw["associations"]["apesa"]["website"].update(
                value="http://www.apesa-france.com/"
            ),
            "associations.apesa.website.value: Value error, must be an https address",
        ),
        (
            lambda raw: raw["associations"]["apesa"]["website"]["source"].update(
                url="http://www.apesa-france.com/articles/decouvrir-apesa"
            ),
            "associations.apesa.website.source.url: Value error, must be an https address",
        ),
        (
            lambda raw: raw["national"][0]["phone"].update(value="12345"),
            "national.3114.phone.value: Value error, '12345' is neither a valid French phone",
        ),
        (
            lambda raw: raw["national"][0]["phone"].update(value="01 23"),
            "national.3114.phone.value: Value error",
        ),
        (
            lambda raw: raw["national"][0]["phone"].update(value="+44 20 7946 0958"),
            "national.3114.phone.value: Value error, '+44 20 7946 0958' is not a French number",
        ),
        (
            lambda raw: raw["associations"]["re-creer"]["phone"].update(note=None),
            "associations.re-creer.phone: Value error, an empty value needs a note",
        ),
        (
            lambda raw: raw["associations"]["apesa"]["website"].pop("checked"),
            "associations.apesa.website.checked: Field required",
        ),
        (
            lambda raw: raw["associations"]["apesa"]["website"].update(
                checked=date.today() + timedelta(days=1)
            ),
            "is in the future",
        ),
        (
            lambda raw: raw["associations"]["apesa"]["website"]["source"].update(
                published=raw["associations"]["apesa"]["website"]["checked"] + timedelta(days=1)
            ),
            "the source is dated after the day it was checked",
        ),
        (
            lambda raw: raw["associations"].pop("re-creer"),
            "associations missing: re-creer",
        ),
        (
            lambda raw: raw["national"].append(copy.deepcopy(raw["national"][1])),
            "national resources listed twice: 15",
        ),
        (
            lambda raw: raw["associations"]["apesa"]["phone"].update(fax="01 23 45 67 89"),
            "associations.apesa.phone.fax: Extra inputs are not permitted",
        ),
    ],
    ids=[
        "value-without-source",
        "http-website",
        "http-source",
        "not-a-phone-number",
        "truncated-number",
        "foreign-number",
        "empty-without-note",
        "no-check-date",
        "checked-in-the-future",
        "source-after-check",
        "association-missing",
        "resource-twice",
        "unknown-field",
    ],
)
def test_the_loader_refuses_what_would_mislead_a_person(change: Any, expected: str) -> None:
    """Each broken entry is refused with an error naming the entry and the field."""
    raw = packaged_raw()
    change(raw)
    assert expected in error_of(raw)


def test_the_loader_refuses_a_document_that_is_not_a_mapping() -> None:
    """A file emptied or mangled by mistake is refused in plain words, not with a traceback."""
    with pytest.raises(ContactsError, match="expected a mapping"):
        parse_contacts("- just a list")
    with pytest.raises(ContactsError, match="not valid YAML"):
        parse_contacts("associations: [unclosed")
