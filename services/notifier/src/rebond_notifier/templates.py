"""The e-mails, in French: pure functions from contract models to a subject and a text body."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.geography import REGIONS, department_label
from rebond_contracts.payloads import (
    ConferenceKind,
    ConferenceSummaryV1,
    InvitationV1,
    ReferralV1,
    RegistrationChange,
    RegistrationV1,
)
from rebond_contracts.questionnaire import Distress, Need, Stage

PARIS = ZoneInfo("Europe/Paris")

STAGE_FR = {
    Stage.PRE_PROCEDURE: "difficultés sans procédure",
    Stage.AMICABLE_PROCEDURE: "mandat ad hoc ou conciliation",
    Stage.SAFEGUARD: "sauvegarde",
    Stage.RECEIVERSHIP: "redressement judiciaire",
    Stage.LIQUIDATION_IN_PROGRESS: "liquidation judiciaire en cours",
    Stage.AFTER_LIQUIDATION: "après une liquidation ou une cession",
    Stage.PROFESSIONAL_RECOVERY: "rétablissement professionnel",
    Stage.UNSURE: "ne sait pas",
}
NEED_FR = {
    Need.LISTENING: "être écouté",
    Need.URGENT_FINANCIAL_LEGAL: "aide financière ou juridique urgente",
    Need.PEER_SUPPORT: "échanger avec des pairs",
    Need.MENTORING: "un parrain ou une marraine",
    Need.COACHING: "un accompagnement (coaching)",
    Need.SALARIED_JOB: "retrouver un emploi salarié",
    Need.NEW_BUSINESS: "créer une nouvelle activité",
    Need.UNDERSTAND_PROCEDURES: "comprendre les procédures",
}
DISTRESS_FR = {
    Distress.YES: "oui, la personne dit être en détresse",
    Distress.NO: "non",
    Distress.PREFER_NOT_TO_SAY: "préfère ne pas répondre",
}
RESOURCES_FR = """Si vous allez mal, vous n'êtes pas seul·e :
- 3114 : numéro national de prévention du suicide, gratuit, 24 h/24 et 7 j/7 ;
- en cas de danger immédiat : le 15 (SAMU) ou le 112 ;
- APESA : soutien psychologique gratuit et confidentiel pour les chefs d'entreprise en
  difficulté, par un psychologue près de chez vous, souvent dans les heures qui suivent."""
SIGNATURE = "L'équipe du Portail du rebond des entrepreneurs"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    #: `Message-ID` without brackets; the same on every attempt, so a copy sent again after a
    #: crash is recognisable as the same message. None: a fresh one.
    message_id: str | None = None


@dataclass(frozen=True)
class AnswerLinks:
    accept: str
    decline: str
    #: When both stop working: the association's deadline for this referral.
    expires_at: datetime


def moment_fr(moment: datetime) -> str:
    """`14/01/2027 à 18 h 30` in Paris time: some deadlines are a day away, so the hour counts."""
    local = moment.astimezone(PARIS)
    return f"{local:%d/%m/%Y} à {local.hour} h {local.minute:02d}"


def _date(moment: datetime | None) -> str:
    return f"{moment_fr(moment)} (heure de Paris)" if moment else "une date non précisée"


def _name(association: AssociationId) -> str:
    return ASSOCIATION_NAMES[association]


def _links(links: AnswerLinks) -> str:
    return (
        "Pour répondre, sans compte ni mot de passe :\n"
        f"- Accepter : {links.accept}\n"
        f"- Décliner : {links.decline}\n"
        "Ces liens sont personnels à votre association et valables jusqu'au "
        f"{moment_fr(links.expires_at)} (heure de Paris)."
    )


def association_referral(
    referral: ReferralV1, to: str, links: AnswerLinks, *, attempt: int = 1
) -> Mail:
    """The new referral, with only what the person agreed to share, and the answer links."""
    urgent = "[URGENT] " if referral.urgent else ""
    contact = referral.contact
    # An antenna's referral names it: its volunteers see at once that the case is theirs.
    whom = _name(referral.association_id) + (
        f" ({referral.antenna.name})" if referral.antenna else ""
    )
    lines = [
        f"Bonjour {whom},",
        "",
        "Une personne vous est orientée par le Portail du rebond des entrepreneurs.",
    ]
    if referral.urgent:
        lines += [
            "",
            "URGENT : la personne a signalé une détresse et accepté qu'on vous le dise.",
            "Merci de la contacter au plus vite, si possible dans les heures qui viennent.",
        ]
    if attempt > 1:
        lines += ["", "Cette personne a d'abord été orientée vers une autre association."]
    lines += [
        "",
        f"Référence : {referral.reference}",
        f"Situation : {STAGE_FR[referral.stage]}",
        f"Région : {REGIONS.get(referral.region, referral.region)}"
        + (
            f", département : {department_label(referral.department)}"
            if referral.department
            else ""
        ),
        "Besoins : " + ", ".join(NEED_FR[n] for n in referral.needs),
        "",
        f"Prénom : {contact.first_name}",
        f"E-mail : {contact.email or 'non communiqué'}",
        f"Téléphone : {contact.phone or 'non communiqué'}",
        "Préfère être contacté·e par : "
        + ("e-mail" if contact.preferred_channel == "email" else "téléphone"),
    ]
    if referral.distress is not None:
        lines.append(f"Détresse : {DISTRESS_FR[referral.distress]}")
    if referral.message:
        lines += ["", "Son message :", referral.message]
    if referral.reasons:
        lines += ["", "Pourquoi vous :"] + [f"- {reason.fr}" for reason in referral.reasons]
    lines += [
        "",
        f"Merci de répondre avant le {_date(referral.respond_by)}.",
        _links(links),
        "",
        SIGNATURE,
    ]
    return Mail(
        to=to,
        subject=f"{urgent}Nouvelle orientation {referral.reference}",
        text="\n".join(lines),
    )


def privacy_line(contact: str, english: bool) -> str:
    """Where to write about one's data: every e-mail to the person says it (art. 13)."""
    if english:
        return f"A question about your personal data? Write to {contact}."
    return f"Une question sur vos données personnelles ? Écrivez à {contact}."


def person_confirmation(
    referral: ReferralV1,
    status_page: str,
    *,
    distress_track: bool = False,
    privacy_contact: str = "",
) -> Mail:
    """The person's first e-mail: their reference, who has their request and what comes next,
    with the link to follow it. Never marked urgent (that word is for the association), and on
    APESA's track (beside the main one) it says a psychologist will call, nothing more."""
    if referral.contact.email is None:
        raise ValueError("the person gave no e-mail address")
    name = _name(referral.association_id)
    channel = "par e-mail" if referral.contact.preferred_channel == "email" else "par téléphone"
    if distress_track:
        next_steps = [
            "Comme vous l'avez accepté, nous avons aussi transmis votre demande à APESA.",
            f"Un·e psychologue d'APESA vous contactera {channel}, gratuitement et en toute "
            "confidentialité, dès que possible.",
            "Cela s'ajoute à l'association qui vous accompagnera pour votre entreprise : vous "
            "recevez un autre message à son sujet.",
        ]
    else:
        next_steps = [
            f"Nous avons transmis votre demande à {name}, avec uniquement ce que vous avez "
            "accepté de partager.",
            f"Une personne {_of(name)} vous contactera {channel}"
            + (
                " en priorité, dès que possible."
                if referral.urgent
                else " dans les prochains jours."
            ),
            "Si l'association ne peut pas vous accompagner, nous orienterons votre demande vers "
            "une autre association du Portail du rebond, sans que vous ayez à tout raconter de "
            "nouveau.",
        ]
    lines = [
        f"Bonjour {referral.contact.first_name},",
        "",
        "Merci d'avoir répondu au questionnaire du Portail du rebond des entrepreneurs.",
        f"Votre référence : {referral.reference} (gardez-la, elle suffit pour parler de votre "
        "demande).",
        "",
        "Et maintenant ?",
        *next_steps,
        "",
        f"Suivre votre demande : {status_page}",
        *([privacy_line(privacy_contact, english=False)] if privacy_contact else []),
        "",
        RESOURCES_FR,
        "",
        SIGNATURE,
    ]
    subject = (
        f"Votre demande {referral.reference} : APESA vous appellera"
        if distress_track
        else f"Votre demande {referral.reference} a bien été transmise"
    )
    return Mail(to=referral.contact.email, subject=subject, text="\n".join(lines))


def _of(name: str) -> str:
    """ "de Second Souffle", "d'APESA": French elides "de" before a vowel sound."""
    return f"d'{name}" if name[:1].upper() in "AEIOUYÉÈ" else f"de {name}"


def association_reminder(
    association: AssociationId,
    to: str,
    reference: str,
    respond_by: datetime | None,
    links: AnswerLinks,
) -> Mail:
    """A referral still waiting for the association's answer."""
    lines = [
        f"Bonjour {_name(association)},",
        "",
        f"L'orientation {reference} attend toujours votre réponse.",
        f"Sans réponse avant le {_date(respond_by)}, elle sera proposée à une autre association.",
        "",
        _links(links),
        "",
        SIGNATURE,
    ]
    return Mail(
        to=to, subject=f"Rappel : orientation {reference} en attente", text="\n".join(lines)
    )


def association_expiry(association: AssociationId, to: str, reference: str) -> Mail:
    """A referral that went unanswered and has been taken back."""
    lines = [
        f"Bonjour {_name(association)},",
        "",
        f"L'orientation {reference} n'a pas reçu de réponse dans le délai prévu : elle a expiré.",
        "La personne sera orientée vers une autre association ; vous n'avez rien à faire.",
        "Merci de ne plus la contacter au titre de cette orientation.",
        "",
        SIGNATURE,
    ]
    return Mail(to=to, subject=f"Orientation {reference} expirée", text="\n".join(lines))


def association_withdrawal(association: AssociationId, to: str, reference: str) -> Mail:
    """The person withdrew their request and asked for erasure: delete what you hold."""
    lines = [
        f"Bonjour {_name(association)},",
        "",
        f"La personne orientée sous la référence {reference} a retiré sa demande et demandé "
        "l'effacement de ses données.",
        "Merci de ne pas la contacter à ce titre et de supprimer ce que vous détenez sur cette "
        "orientation (e-mails, fiches, notes). Aucune réponse n'est attendue.",
        "",
        SIGNATURE,
    ]
    return Mail(to=to, subject=f"Demande {reference} retirée", text="\n".join(lines))


# --- Conférences du rebond: to the person who registered or is invited ----------------------

CONFERENCE_SIGNATURE = "L'équipe des Conférences du rebond"
KIND_FR = {
    ConferenceKind.CONFERENCE: "conférence",
    ConferenceKind.PEER_EXCHANGE: "rencontre entre pairs",
    ConferenceKind.SUCCESS_STORIES: "soirée de témoignages",
}
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def _day_fr(moment: datetime) -> str:
    day = "1er" if moment.day == 1 else str(moment.day)
    return f"{_DAYS_FR[moment.weekday()]} {day} {_MONTHS_FR[moment.month - 1]} {moment.year}"


def _time_fr(moment: datetime) -> str:
    return f"{moment.hour} h {moment.minute:02d}"


def when_fr(starts_at: datetime, ends_at: datetime) -> str:
    """`jeudi 14 janvier 2027, de 18 h 30 à 20 h 30` in Paris time, whatever the offset given."""
    start, end = starts_at.astimezone(PARIS), ends_at.astimezone(PARIS)
    if start.date() == end.date():
        return f"{_day_fr(start)}, de {_time_fr(start)} à {_time_fr(end)}"
    return f"du {_day_fr(start)}, {_time_fr(start)}, au {_day_fr(end)}, {_time_fr(end)}"


def _conference_lines(conference: ConferenceSummaryV1, ics_url: str | None) -> list[str]:
    lines = [
        f"« {conference.title} » ({KIND_FR[conference.kind]})",
        f"Quand : {when_fr(conference.starts_at, conference.ends_at)} (heure de Paris)",
        f"Où : {conference.venue_address}, {conference.city}",
    ]
    if conference.online_url:
        lines.append(f"En ligne : {conference.online_url}")
    if conference.page_url:
        lines.append(f"La page de la conférence : {conference.page_url}")
    if ics_url:
        lines.append(f"L'ajouter à votre agenda (fichier .ics) : {ics_url}")
    return lines


def _cancel_line(cancel_url: str | None) -> list[str]:
    if not cancel_url:
        return []
    return [
        "",
        "Si vous ne pouvez plus venir, libérez votre place pour quelqu'un d'autre, en un clic :",
        cancel_url,
    ]


def registration_mail(registration: RegistrationV1, ics_url: str | None) -> Mail:
    """One step of a registration (confirmed, waitlisted, promoted, reminded before it,
    cancelled, conference changed), told simply and kindly to the person, with what they need and nothing more."""
    conference = registration.conference
    change = registration.change
    title = conference.title
    hello = [f"Bonjour {registration.name},", ""]
    details = _conference_lines(conference, ics_url)
    lines: list[str]
    if change == RegistrationChange.CONFIRMED:
        subject = f"Inscription confirmée : {title}"
        lines = [
            *hello,
            "Votre inscription est confirmée : une place vous attend.",
            "",
            *details,
            *_cancel_line(registration.cancel_url),
            "",
            "Nous serons heureux de vous accueillir.",
        ]
    elif change == RegistrationChange.WAITLISTED:
        position = registration.waitlist_position
        subject = f"Liste d'attente : {title}"
        lines = [
            *hello,
            "Toutes les places sont prises pour le moment : vous êtes sur la liste d'attente"
            + (f", en position {position}." if position else "."),
            "Dès qu'une place se libère, elle vous est attribuée et nous vous écrivons aussitôt.",
            "",
            *details,
            *_cancel_line(registration.cancel_url),
        ]
    elif change == RegistrationChange.PROMOTED:
        subject = f"Une place s'est libérée : {title}"
        lines = [
            *hello,
            "Bonne nouvelle : une place s'est libérée et elle est pour vous. "
            "Votre inscription est confirmée.",
            "",
            *details,
            *_cancel_line(registration.cancel_url),
            "",
            "Nous serons heureux de vous accueillir.",
        ]
    elif change == RegistrationChange.REMINDER:
        # The date below says when: the reminder goes two days before, or later when the
        # events service was away then, so "dans deux jours" would not always hold.
        subject = f"Rappel : {title} approche"
        lines = [
            *hello,
            "Petit rappel : la conférence à laquelle vous êtes inscrit·e approche. Nous avons "
            "hâte de vous y accueillir.",
            "",
            *details,
            *_cancel_line(registration.cancel_url),
        ]
    elif change == RegistrationChange.CANCELLED and registration.cancelled_by == "organiser":
        subject = f"Conférence annulée : {title}"
        lines = [
            *hello,
            "Nous sommes désolés : l'organisateur a dû annuler cette conférence, et votre "
            "inscription avec elle. Vous n'avez rien à faire.",
            "",
            *_conference_lines(conference, None),
            "",
            "D'autres Conférences du rebond ont lieu près de chez vous : nous espérons vous y "
            "retrouver.",
        ]
    elif change == RegistrationChange.CANCELLED:
        subject = f"Inscription annulée : {title}"
        lines = [
            *hello,
            "Votre inscription est bien annulée. Merci d'avoir libéré votre place.",
            "",
            *_conference_lines(conference, None),
            "",
            "Vous serez toujours le bienvenu ou la bienvenue à une prochaine conférence.",
        ]
    elif conference.cancelled:  # event_updated about a cancelled conference
        subject = f"Conférence annulée : {title}"
        lines = [
            *hello,
            "Nous sommes désolés : cette conférence est annulée. Vous n'avez rien à faire.",
            "",
            *_conference_lines(conference, None),
        ]
    else:  # event_updated: the registration still holds
        position = registration.waitlist_position
        still = (
            "Vous êtes toujours sur la liste d'attente"
            + (f", en position {position}." if position else ".")
            if position
            else "Votre inscription tient toujours."
        )
        subject = f"Changement pour la conférence : {title}"
        lines = [
            *hello,
            "L'organisateur a modifié la conférence à laquelle vous êtes inscrit·e. "
            "Voici ce qui est prévu désormais :",
            "",
            *details,
            "",
            still,
            *_cancel_line(registration.cancel_url),
        ]
    lines += ["", CONFERENCE_SIGNATURE]
    return Mail(to=registration.email, subject=subject, text="\n".join(lines))


def invitation_mail(invitation: InvitationV1, ics_url: str | None) -> Mail:
    """An invitation to a nearby conference, with the page where one registers."""
    conference = invitation.conference
    near = "dans votre département" if invitation.match == "department" else "dans votre région"
    lines = [
        f"Bonjour {invitation.first_name},",
        "",
        f"Une Conférence du rebond a lieu {near} ; vous avez accepté que nous vous en parlions,",
        "alors voici l'invitation. On y vient pour écouter, échanger, reprendre des forces,",
        "sans rien avoir à raconter si on ne le souhaite pas.",
        "",
        *_conference_lines(conference, ics_url),
        "",
        "L'entrée est gratuite ; l'inscription se fait sur la page de la conférence"
        + (f" : {conference.page_url}" if conference.page_url else "."),
        "",
        "Vous recevez ce message parce que vous avez accepté les invitations du Portail du "
        f"rebond (référence {invitation.reference}). Pour ne plus en recevoir, il suffit de "
        "le demander à l'équipe du portail en citant cette référence.",
        "",
        CONFERENCE_SIGNATURE,
    ]
    return Mail(
        to=invitation.email,
        subject=f"Invitation : {conference.title}",
        text="\n".join(lines),
    )
