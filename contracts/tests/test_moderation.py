"""The peer volunteers to moderate, as the events API writes them and the console reads them."""

from datetime import UTC, datetime

from rebond_contracts.moderation import VolunteerForModerator, VolunteerStatus


def test_the_console_reads_a_volunteer_as_the_events_api_writes_it() -> None:
    """What the events API answers (JSON) reads back as the same volunteer, its status as one
    of the statuses (a reported one with the side who reported it)."""
    written = VolunteerForModerator(
        id="6f1c2f8e-8d7a-4c55-9a43-0b6e0c1f9a10", status=VolunteerStatus.REPORTED,
        pseudonym="Paul", region="75", stage="receivership", sector="C",
        availability="le soir", monthly_limit=2,
        created_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC), reported_by="person",
    )  # fmt: skip
    read = VolunteerForModerator.model_validate_json(written.model_dump_json())
    assert read == written
    assert read.status is VolunteerStatus.REPORTED and read.status == "reported"


def test_a_volunteer_to_moderate_carries_no_contact_nor_address() -> None:
    """A moderator decides on what the volunteer said about themself, never on how to reach
    them: the shape has no field for it."""
    assert not {"contact", "contact_channel", "email"} & set(VolunteerForModerator.model_fields)
