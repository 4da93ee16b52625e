"""The person's e-mails at each step of their request (issue 20): pure functions from a status
to a subject and a text, in the person's language first and the other one after it (French
first for a French speaker, English first for an English speaker, so that nobody gets a mail
they cannot read).

What they may hold is fixed here, not by the caller: the association's name, who will call and
when (the association's own data), the reference and the `/suivi` link. Never the distress
answer or the free text: a `distress` track's acceptance is told as "un·e psychologue d'APESA
vous appellera", and it goes only to the person's own address.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.payloads import ReferralStatus, ReferralStatusV1
from rebond_notifier.store import Person
from rebond_notifier.templates import SIGNATURE, Mail, moment_fr, privacy_line

PARIS = ZoneInfo("Europe/Paris")
SIGNATURE_EN = "The Portail du rebond des entrepreneurs team"
HELP_FR = (
    "Si vous allez mal, vous n'êtes pas seul·e : le 3114 (prévention du suicide) répond "
    "gratuitement, 24 h/24 ; en cas de danger immédiat, le 15 ou le 112."
)
HELP_EN = (
    "If you are struggling, you are not alone: call 3114 (suicide prevention, free, 24/7); "
    "in immediate danger, call 15 or 112."
)


@dataclass(frozen=True)
class Text:
    """One language's version of a mail."""

    subject: str
    lines: list[str]


@dataclass(frozen=True)
class Links:
    """Where the person follows their request, and the follow-up answers (when asked)."""

    status: str
    contacted_yes: str | None = None
    contacted_no: str | None = None
    #: The grouping's data-protection contact (`NOTIFIER_PRIVACY_CONTACT`).
    privacy: str = ""


@dataclass(frozen=True)
class Earlier:
    """What the person was already told about their request's other track (main or distress),
    so that the second of two steps that would read alike says what differs instead of
    repeating the first (`planning.earlier`)."""

    #: The other track's association whose acceptance they were told, if any.
    accepted_by: AssociationId | None = None
    #: Whether they were told that the other track is in the grouping's team's hands.
    unrouted: bool = False
    #: Whether they were told that their request is closed (a closure closes every track).
    closed: bool = False


def _moment_en(moment: datetime) -> str:
    local = moment.astimezone(PARIS)
    return f"{local:%d %B %Y} at {local:%H:%M}"


def _name(association: AssociationId | None) -> str:
    return ASSOCIATION_NAMES[association] if association else "l'association"


def _texts(
    status: ReferralStatusV1,
    person: Person,
    links: Links,
    *,
    cause: ReferralStatus | None,
    callback_days: int,
    earlier: Earlier,
) -> tuple[Text, Text] | None:
    """The French and English versions of the mail for `status`, or None when the step asks
    for none. With both tracks, the second of two alike steps says what differs from the
    first (`earlier`); a second closure says nothing (the first told it whole)."""
    ref = status.reference
    name = _name(status.association_id)
    both_fr, both_en = _both_calls(earlier.accepted_by, apesa_first=status.track == "main")
    if status.status == ReferralStatus.ACCEPTED and status.track == "distress":
        when_fr = f" d'ici le {moment_fr(status.call_by)}" if status.call_by else " très vite"
        when_en = f" by {_moment_en(status.call_by)}" if status.call_by else " very soon"
        return (
            Text(f"Un·e psychologue d'APESA va vous appeler ({ref})", [
                f"Un·e psychologue d'APESA va vous appeler{when_fr}, gratuitement et en toute "
                "confidentialité.",
                "Vous n'avez rien à préparer : c'est un temps d'écoute, pour vous.",
                *both_fr,
            ]),
            Text(f"An APESA psychologist will call you ({ref})", [
                f"An APESA psychologist will call you{when_en}, free of charge and in "
                "confidence. There is nothing to prepare: this time is for you.",
                *both_en,
            ]),
        )  # fmt: skip
    if status.status == ReferralStatus.ACCEPTED:
        who_fr = (
            f"{status.caller}, de {name}," if status.caller else f"Un ou une bénévole de {name}"
        )
        who_en = f"{status.caller}, from {name}," if status.caller else f"A volunteer from {name}"
        when_fr = (
            f" d'ici le {moment_fr(status.call_by)} (heure de Paris)"
            if status.call_by
            else " dans les prochains jours"
        )
        when_en = (
            f" by {_moment_en(status.call_by)} (Paris time)"
            if status.call_by
            else " in the coming days"
        )
        return (
            Text(f"{name} a accepté votre demande {ref}", [
                f"Bonne nouvelle : {name} a accepté de vous accompagner.",
                f"{who_fr} vous contactera{when_fr}.",
                *both_fr,
            ]),
            Text(f"{name} has accepted your request {ref}", [
                f"Good news: {name} has agreed to support you.",
                f"{who_en} will contact you{when_en}.",
                *both_en,
            ]),
        )  # fmt: skip
    if status.status == ReferralStatus.REORIENTED and status.next_association_id:
        following = _name(status.next_association_id)
        if cause == ReferralStatus.EXPIRED:
            why_fr, why_en = (
                f"{name} n'a pas pu répondre à temps.",
                f"{name} could not answer in time.",
            )
        elif cause == ReferralStatus.DECLINED:
            why_fr = f"{name} ne peut pas vous accompagner cette fois-ci."
            why_en = f"{name} cannot support you this time."
        else:
            why_fr, why_en = f"{name} n'a pas pu donner suite.", f"{name} could not follow up."
        return (
            Text(f"Votre demande {ref} est transmise à {following}", [
                why_fr,
                f"Nous avons transmis votre demande à {following}, sans que vous ayez à tout "
                "raconter de nouveau. Nous vous écrirons dès qu'elle aura répondu.",
            ]),
            Text(f"Your request {ref} now goes to {following}", [
                why_en,
                f"We have passed your request on to {following}; you do not need to tell your "
                "story again. We will write to you as soon as they answer.",
            ]),
        )  # fmt: skip
    if status.status == ReferralStatus.UNROUTED:
        return _unrouted(status, callback_days, earlier)
    if status.status == ReferralStatus.CLOSED:
        if earlier.closed:  # both tracks closed together: the first mail told it
            return None
        return (
            Text(f"Votre demande {ref} est close", [
                "Votre demande est désormais close. Merci de nous avoir fait confiance.",
                "Si vous avez de nouveau besoin d'aide, vous pouvez refaire une demande sur le "
                "portail à tout moment.",
            ]),
            Text(f"Your request {ref} is closed", [
                "Your request is now closed. Thank you for your trust.",
                "If you need help again, you can make a new request on the portal at any time.",
            ]),
        )  # fmt: skip
    if status.status == ReferralStatus.FOLLOW_UP_DUE and links.contacted_yes:
        return (
            Text(f"Avez-vous été contacté·e par {name} ? ({ref})", [
                f"Il y a quelques semaines, {name} a accepté votre demande. "
                "Avez-vous été contacté·e ?",
                "",
                f"- Oui : {links.contacted_yes}",
                f"- Non : {links.contacted_no}",
                "Si ce n'est pas le cas, l'équipe du Portail du rebond reprendra votre demande.",
            ]),
            Text(f"Have you been contacted by {name}? ({ref})", [
                f"A few weeks ago, {name} accepted your request. Have you been contacted? "
                "Answer with the links above (Oui = yes, Non = no). If not, the portal team "
                "will take your request over.",
            ]),
        )  # fmt: skip
    return None


def _both_calls(other: AssociationId | None, *, apesa_first: bool) -> tuple[list[str], list[str]]:
    """The line, in French and English, that tells a second acceptance from the first: two
    calls, each its own; none without a first (`other`)."""
    if other is None:
        return [], []
    if apesa_first:
        return (
            ["Cet appel, pour votre entreprise, s'ajoute à celui du ou de la psychologue "
             "d'APESA annoncé dans notre précédent message, qui est un temps d'écoute pour vous."],
            ["This call, about your business, comes in addition to the APESA psychologist's "
             "announced in our previous message, which is a time to listen to you."],
        )  # fmt: skip
    return (
        [f"Cet appel, un temps d'écoute pour vous, s'ajoute à celui de {_name(other)} annoncé "
         "dans notre précédent message, qui porte sur votre entreprise."],
        [f"This call, a time to listen to you, comes in addition to {_name(other)}'s announced "
         "in our previous message, which is about your business."],
    )  # fmt: skip


def _unrouted(status: ReferralStatusV1, callback_days: int, earlier: Earlier) -> tuple[Text, Text]:
    """The human queue takes a track over. Which track it is matters (the other may be in good
    hands); when the other track is already with the team, this one says so: one call for
    both."""
    ref = status.reference
    if status.track == "distress":
        who_fr, who_en = (
            "Les psychologues d'APESA n'ont pas pu donner suite",
            ("APESA's psychologists could not follow up"),
        )
    else:
        who_fr = "Les associations sollicitées n'ont pas pu prendre votre demande en charge"
        who_en = "The associations we asked could not take on your request"
    if earlier.unrouted:
        return (
            Text(f"Votre demande {ref} : un seul rappel de l'équipe du portail", [
                f"{who_fr} non plus.",
                "L'équipe du Portail du rebond, qui reprend déjà votre demande, s'occupe des "
                "deux : une seule personne de l'équipe vous rappellera, d'ici "
                f"{callback_days} jours ouvrés.",
            ]),
            Text(f"Your request {ref}: one call back from the portal team", [
                f"{who_en} either.",
                "The Portail du rebond team, which already has your request, takes care of "
                f"both: one person from the team will call you back within {callback_days} "
                "working days.",
            ]),
        )  # fmt: skip
    return (
        Text(f"L'équipe du portail reprend votre demande {ref}", [
            f"{who_fr}.",
            "L'équipe du Portail du rebond la reprend elle-même : quelqu'un de l'équipe vous "
            f"rappellera d'ici {callback_days} jours ouvrés.",
        ]),
        Text(f"The portal team takes over your request {ref}", [
            f"{who_en}.",
            "The Portail du rebond team takes it over: someone from the team will call you "
            f"back within {callback_days} working days.",
        ]),
    )  # fmt: skip


def _body(first: Text, then: Text, person: Person, ref: str, link: str | None, privacy: str) -> str:
    english = person.locale == "en"
    hello = f"Hello {person.first_name}," if english else f"Bonjour {person.first_name},"
    follow = (
        [f"Follow your request: {link}" if english else f"Suivre votre demande : {link}"]
        if link
        else []
    )
    reference = f"Reference: {ref}" if english else f"Votre référence : {ref}"
    data = [privacy_line(privacy, english)] if privacy else []
    other = "Version française :" if english else "In English:"
    return "\n".join(
        [hello, "", *first.lines, "", *follow, reference, *data, "",
         HELP_EN if english else HELP_FR,
         "", SIGNATURE_EN if english else SIGNATURE, "", "---", other, *then.lines]
    )  # fmt: skip


def _mail(
    texts: tuple[Text, Text], person: Person, ref: str, link: str | None, privacy: str
) -> Mail:
    fr, en = texts
    first, then = (en, fr) if person.locale == "en" else (fr, en)
    body = _body(first, then, person, ref, link, privacy)
    return Mail(to=person.email, subject=first.subject, text=body)


def step_mail(
    status: ReferralStatusV1,
    person: Person,
    links: Links,
    *,
    cause: ReferralStatus | None = None,
    callback_days: int = 2,
    earlier: Earlier = Earlier(),
) -> Mail | None:
    """The person's e-mail for one step of their request, or None when the step asks for none
    (offered, reminded: the association's business; declined and expired: told with the
    re-orientation or the human queue that follows, in one mail)."""
    texts = _texts(status, person, links, cause=cause, callback_days=callback_days, earlier=earlier)
    if texts is None:
        return None
    return _mail(texts, person, status.reference, links.status, links.privacy)


def erased_mail(person: Person, privacy_contact: str = "") -> Mail:
    """The confirmation of an erasure: the last mail, with no link (nothing is left to follow)."""
    texts = (
        Text(f"Vos données ont été effacées ({person.reference})", [
            f"Comme vous l'avez demandé, nous avons retiré votre demande {person.reference} et "
            "effacé vos données. Les associations qui l'avaient reçue sont prévenues et doivent "
            "effacer ce qu'elles détiennent.",
            "Ce message est le dernier que vous recevrez de notre part à ce sujet. Vous pouvez "
            "refaire une demande sur le portail à tout moment.",
        ]),
        Text(f"Your data has been erased ({person.reference})", [
            f"As you asked, we have withdrawn your request {person.reference} and erased your "
            "data. The associations that received it have been told to delete what they hold. "
            "This is the last message you will get from us about it.",
        ]),
    )  # fmt: skip
    return _mail(texts, person, person.reference, None, privacy_contact)
