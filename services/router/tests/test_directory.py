"""The association directory: the shipped file is valid; bad files are refused, explained."""

from pathlib import Path
from uuid import uuid4

import pytest
import yaml

from rebond_contracts.associations import AssociationId
from rebond_router.directory import DEFAULT_PATH, DirectoryError, load_directory, parse_directory


def shipped() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(DEFAULT_PATH.read_text())


def test_the_shipped_directory_lists_every_association_once() -> None:
    """The committed directory loads, versioned, with all five associations."""
    directory = load_directory()
    assert directory.version
    assert {a.id for a in directory.associations} == set(AssociationId)
    assert directory.get(AssociationId.RE_CREER).regions == ["11"]
    assert directory.get(AssociationId.SOIXANTE_MILLE_REBONDS).stages == ["after_liquidation"]


def test_the_gironde_antenna_serves_department_33_only() -> None:
    """60 000 rebonds' example antenna takes the Gironde (33); other departments, and a person
    without one, go to the association itself."""
    sixty = load_directory().get(AssociationId.SOIXANTE_MILLE_REBONDS)
    gironde = sixty.antenna_for("33")
    assert gironde is not None and gironde.name == "Antenne Gironde"
    assert gironde.email.endswith(".example")  # a reserved domain: nobody receives it
    assert sixty.antenna_for("69") is None and sixty.antenna_for(None) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["associations"][3]["stages"].append("bankrupt"),
            "association 're-creer', field 'stages.3'",
        ),
        (
            lambda d: d["associations"][0].pop("weekly_capacity"),
            "association 'sos-entrepreneur', field 'weekly_capacity': Field required",
        ),
        (lambda d: d["associations"][2].update(regions=["99"]), "'99' is not an INSEE region code"),
        (
            lambda d: d["associations"][3].update(regions=[], national=False),
            "association 're-creer', field '<entry>': Value error, needs at least one region",
        ),
        (
            lambda d: d["associations"][1].update(reminder_days_before_deadline=10),
            "must be smaller than response_deadline_days",
        ),
        (
            lambda d: d["associations"].append(dict(d["associations"][0])),
            "associations listed twice: sos-entrepreneur",
        ),
        (
            lambda d: d["associations"][4].update(paused="maybe"),
            "association 'apesa', field 'paused'",
        ),
        (lambda d: d.pop("version"), "field 'version': Field required"),
        (
            lambda d: d["associations"][2]["antennas"][0].update(departments=["33", "99"]),
            "association '60000-rebonds', field 'antennas.0.departments.1': Value error, '99' "
            "is not a French department code",
        ),
        (
            lambda d: d["associations"][2]["antennas"][0].update(email="gironde-at-example"),
            "association '60000-rebonds', field 'antennas.0.email': value is not a valid email",
        ),
        (
            lambda d: d["associations"][2]["antennas"][0].update(webhook_url="ftp://x.example/"),
            "association '60000-rebonds', field 'antennas.0.webhook_url'",
        ),
        (
            lambda d: d["associations"][2]["antennas"][0].pop("name"),
            "association '60000-rebonds', field 'antennas.0.name': Field required",
        ),
        (
            lambda d: d["associations"][2]["antennas"][0].update(departments=[]),
            "association '60000-rebonds', field 'antennas.0.departments'",
        ),
        (
            lambda d: d["associations"][2]["antennas"].append(
                {
                    "name": "Antenne Aquitaine",
                    "departments": ["24", "33"],
                    "email": "aquitaine@60000rebonds.example",
                }
            ),
            "association '60000-rebonds', field 'antennas': Value error, department 33 is in two "
            "antennas ('Antenne Gironde' and 'Antenne Aquitaine')",
        ),
        (
            lambda d: d["associations"][2]["antennas"].append(
                {
                    "name": "Antenne Gironde",
                    "departments": ["24"],
                    "email": "dordogne@60000rebonds.example",
                }
            ),
            "association '60000-rebonds', field 'antennas': Value error, antenna names listed "
            "twice: Antenne Gironde",
        ),
        (
            lambda d: d["associations"][2]["antennas"][0].update(departments=["33", "33"]),
            "field 'antennas.0.departments': Value error, lists a department twice: 33",
        ),
        (
            lambda d: d["associations"][0].update(override_id=str(uuid4())),
            "association 'sos-entrepreneur', field 'override_id': Value error, is set by the "
            "coordinators' overrides",
        ),
    ],
)
def test_a_bad_directory_is_refused_naming_the_association_and_field(change, message: str) -> None:  # type: ignore[no-untyped-def]
    """Each mistake an editor can make is reported in words that point at it."""
    data = shipped()
    change(data)
    with pytest.raises(DirectoryError) as caught:
        parse_directory(yaml.safe_dump(data), "directory.yaml")
    assert message in str(caught.value)


def test_an_unreadable_or_malformed_file_is_refused(tmp_path: Path) -> None:
    """A missing file or broken YAML stops the router with the path in the message."""
    with pytest.raises(DirectoryError, match="cannot read"):
        load_directory(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [unclosed\n")
    with pytest.raises(DirectoryError, match="not valid YAML"):
        load_directory(broken)


def test_no_answer_deadline_outlives_the_referral_on_kafka() -> None:
    """`referrals.<id>` keeps a referral for the longest answer deadline and no longer: an
    association given more time would look for a referral Kafka has already deleted."""
    from datetime import timedelta

    from rebond_contracts.topics import referrals

    directory = load_directory()
    for association in AssociationId:
        retention = timedelta(milliseconds=referrals(association).retention_ms or 0)
        assert directory.get(association).response_deadline <= retention
