"""`.ics` files (RFC 5545) so people can add a conference to their calendar."""

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from rebond_events.domain import PARIS
from rebond_events.models import EventPublic

KIND_LABELS = {
    "conference": "Conférence",
    "peer_exchange": "Échange entre pairs",
    "success_stories": "Témoignages de rebond",
}


def ics(event: EventPublic, now: datetime | None = None) -> bytes:
    """One VEVENT in Europe/Paris time, with its VTIMEZONE; cancelled ones say so."""
    calendar = Calendar()
    calendar.add("prodid", "-//Portail du rebond des entrepreneurs//Conférences du rebond//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    vevent = Event()
    vevent.add("uid", f"{event.id}@conferences.rebond")
    vevent.add("dtstamp", now or datetime.now(UTC))
    vevent.add("sequence", event.version - 1)
    vevent.add("dtstart", event.starts_at.astimezone(PARIS))
    vevent.add("dtend", event.ends_at.astimezone(PARIS))
    vevent.add("summary", event.title)
    description = event.description
    if event.online_url:
        description = f"{description}\n\nEn ligne : {event.online_url}".strip()
    vevent.add("description", f"{KIND_LABELS[event.kind.value]}. {description}".strip())
    vevent.add("location", f"{event.venue_address}, {event.city}")
    vevent.add("url", event.page_url)
    vevent.add("status", "CANCELLED" if event.status == "cancelled" else "CONFIRMED")
    calendar.add_component(vevent)
    calendar.add_missing_timezones(
        first_date=(event.starts_at - timedelta(days=366)).date(),
        last_date=(event.ends_at + timedelta(days=366)).date(),
    )
    return bytes(calendar.to_ical())
