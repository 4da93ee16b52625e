"""The questionnaire as data (`GET /v1/questionnaire`): any portal can render the form from it.

Values come from the contract's enumerations; only the labels live here.
"""

from typing import Any

from rebond_contracts.geography import DEPARTMENT_NAMES, REGION_OF_DEPARTMENT, REGIONS
from rebond_contracts.questionnaire import (
    MESSAGE_MAX_LENGTH,
    NEEDS_MAX,
    PHONE_PATTERN,
    CompanySize,
    Distress,
    Need,
    PreferredChannel,
    Stage,
)
from rebond_intake.resources import RESOURCES

Label = dict[str, str]

#: The distress answers for which the art. 9 consent is asked, and honoured
#: (`submissions.sensitive_consent`). The contract has no "unsure" answer.
SENSITIVE_WHEN = (Distress.YES.value,)


def _l(fr: str, en: str) -> Label:
    return {"fr": fr, "en": en}


DISTRESS_LABELS: dict[str, Label] = {
    Distress.YES: _l("Oui", "Yes"),
    Distress.NO: _l("Non", "No"),
    Distress.PREFER_NOT_TO_SAY: _l("Je préfère ne pas répondre", "I'd rather not say"),
}
STAGE_LABELS: dict[str, Label] = {
    Stage.PRE_PROCEDURE: _l("Difficultés, sans procédure", "Difficulties, no court procedure"),
    Stage.AMICABLE_PROCEDURE: _l(
        "Mandat ad hoc ou conciliation", "Amicable procedure (mandat ad hoc, conciliation)"
    ),
    Stage.SAFEGUARD: _l("Sauvegarde", "Safeguard"),
    Stage.RECEIVERSHIP: _l("Redressement judiciaire", "Receivership"),
    Stage.LIQUIDATION_IN_PROGRESS: _l(
        "Liquidation judiciaire en cours", "Judicial liquidation in progress"
    ),
    Stage.AFTER_LIQUIDATION: _l(
        "Votre entreprise a été liquidée ou cédée",
        "Your company was liquidated or sold by the court",
    ),
    Stage.PROFESSIONAL_RECOVERY: _l("Rétablissement professionnel", "Professional recovery"),
    Stage.UNSURE: _l("Je ne sais pas", "I don't know"),
}
#: One plain sentence per stage, so that a person who does not know the legal words can tell
#: where they stand (shared/domain.md, "Stages of a company in difficulty").
STAGE_HELP: dict[str, Label] = {
    Stage.PRE_PROCEDURE: _l(
        "Vous rencontrez des difficultés, mais aucun tribunal n'est saisi.",
        "You are in difficulty, but no court is involved.",
    ),
    Stage.AMICABLE_PROCEDURE: _l(
        "Une négociation confidentielle avec vos créanciers, menée avec l'aide d'un mandataire "
        "ou d'un conciliateur nommé par le tribunal.",
        "A confidential negotiation with your creditors, helped by someone the court appointed.",
    ),
    Stage.SAFEGUARD: _l(
        "Le tribunal protège l'entreprise pendant qu'elle se réorganise ; elle paie encore ses "
        "dettes exigibles.",
        "The court protects the company while it reorganises; it still pays its due debts.",
    ),
    Stage.RECEIVERSHIP: _l(
        "L'entreprise ne peut plus payer ses dettes exigibles, mais un redressement reste "
        "possible.",
        "The company can no longer pay its due debts, but recovery is still possible.",
    ),
    Stage.LIQUIDATION_IN_PROGRESS: _l(
        "L'activité s'arrête et les biens de l'entreprise sont vendus.",
        "The business stops and its assets are being sold.",
    ),
    Stage.AFTER_LIQUIDATION: _l(
        "La procédure est terminée, ou le tribunal a fait céder l'entreprise.",
        "The procedure is over, or the court had the business sold.",
    ),
    Stage.PROFESSIONAL_RECOVERY: _l(
        "Entrepreneur individuel sans salarié et avec peu de biens : vos dettes sont effacées "
        "en quelques mois.",
        "Sole trader with no staff and few assets: your debts are wiped in a few months.",
    ),
    Stage.UNSURE: _l(
        "Ce n'est pas grave : l'association vous aidera à y voir clair.",
        "That's fine: the association will help you work it out.",
    ),
}
SIZE_LABELS: dict[str, Label] = {
    CompanySize.NONE: _l("Aucun salarié", "No staff"),
    CompanySize.MICRO: _l("1 à 9 salariés", "1 to 9 staff"),
    CompanySize.SMALL: _l("10 à 49 salariés", "10 to 49 staff"),
    CompanySize.MEDIUM: _l("50 à 249 salariés", "50 to 249 staff"),
    CompanySize.LARGE: _l("250 salariés ou plus", "250 staff or more"),
}
NEED_LABELS: dict[str, Label] = {
    Need.LISTENING: _l("Quelqu'un pour m'écouter", "Someone to listen"),
    Need.URGENT_FINANCIAL_LEGAL: _l(
        "Urgence de trésorerie ou juridique", "Urgent cash-flow or legal help"
    ),
    Need.PEER_SUPPORT: _l("Échanger avec d'autres entrepreneurs", "Talk with other entrepreneurs"),
    Need.MENTORING: _l("Un parrain ou une marraine", "A mentor"),
    Need.COACHING: _l("Un accompagnement (coaching)", "Coaching"),
    Need.SALARIED_JOB: _l("Retrouver un emploi salarié", "Find a salaried job"),
    Need.NEW_BUSINESS: _l("Créer une nouvelle activité", "Start a new business"),
    Need.UNDERSTAND_PROCEDURES: _l("Comprendre les procédures", "Understand the procedures"),
}
CHANNEL_LABELS: dict[str, Label] = {
    PreferredChannel.EMAIL: _l("Par e-mail", "By e-mail"),
    PreferredChannel.PHONE: _l("Par téléphone", "By phone"),
}
SECTOR_LABELS: dict[str, Label] = {
    "A": _l("Agriculture, sylviculture et pêche", "Agriculture, forestry and fishing"),
    "B": _l("Industries extractives", "Mining and quarrying"),
    "C": _l("Industrie manufacturière", "Manufacturing"),
    "D": _l("Électricité, gaz, vapeur", "Electricity, gas, steam"),
    "E": _l("Eau, déchets, dépollution", "Water, waste, remediation"),
    "F": _l("Construction", "Construction"),
    "G": _l("Commerce ; réparation d'automobiles", "Trade; repair of motor vehicles"),
    "H": _l("Transports et entreposage", "Transport and storage"),
    "I": _l("Hébergement et restauration", "Accommodation and food"),
    "J": _l("Information et communication", "Information and communication"),
    "K": _l("Finance et assurance", "Finance and insurance"),
    "L": _l("Activités immobilières", "Real estate"),
    "M": _l("Activités spécialisées, scientifiques et techniques", "Professional and technical"),
    "N": _l("Services administratifs et de soutien", "Administrative and support services"),
    "O": _l("Administration publique", "Public administration"),
    "P": _l("Enseignement", "Education"),
    "Q": _l("Santé humaine et action sociale", "Health and social work"),
    "R": _l("Arts, spectacles et loisirs", "Arts and recreation"),
    "S": _l("Autres activités de services", "Other services"),
    "T": _l("Ménages employeurs", "Households as employers"),
    "U": _l("Organisations extraterritoriales", "Extraterritorial organisations"),
}
_REGION_EN = {"other": "Other (overseas collectivity, abroad)"}


def _options(
    labels: dict[str, Label], help: dict[str, Label] | None = None
) -> list[dict[str, Any]]:
    return [
        {"value": str(value), "label": label, **({"help": help[value]} if help else {})}
        for value, label in labels.items()
    ]


def questionnaire_form() -> dict[str, Any]:
    """Questions in the order a person should meet them: distress first."""
    regions = [
        {"value": code, "label": _l(name, _REGION_EN.get(code, name))}
        for code, name in REGIONS.items()
    ]
    departments = [  # "33 - Gironde": the code people know from postcodes, and the name
        {"value": dep, "label": _l(name, name), "region": region}
        for dep, region in sorted(REGION_OF_DEPARTMENT.items())
        for name in [f"{dep} - {DEPARTMENT_NAMES[dep]}"]
    ]
    return {
        "version": 1,
        "submit": {"method": "POST", "url": "/v1/submissions"},
        "resources": [r.model_dump() for r in RESOURCES],
        "questions": [
            {
                "id": "distress",
                "type": "single",
                "required": True,
                "label": _l(
                    "Vous sentez-vous en détresse, ou avez-vous des idées noires ?",
                    "Do you feel in distress, or have dark thoughts?",
                ),
                "options": _options(DISTRESS_LABELS),
                "show_resources_when": "yes",
            },
            {
                "id": "situation.stage",
                "type": "single",
                "required": True,
                "label": _l("Où en est votre entreprise ?", "Where does your company stand?"),
                "options": _options(STAGE_LABELS, STAGE_HELP),
            },
            {
                "id": "situation.company_size",
                "type": "single",
                "required": True,
                "label": _l("Combien de salariés ?", "How many staff?"),
                "options": _options(SIZE_LABELS),
            },
            {
                "id": "situation.sector",
                "type": "select",
                "required": False,
                "label": _l("Secteur d'activité", "Sector"),
                "options": _options(SECTOR_LABELS),
            },
            {
                "id": "situation.region",
                "type": "select",
                "required": True,
                "label": _l("Votre région", "Your region"),
                "options": regions,
            },
            {
                "id": "situation.department",
                "type": "select",
                "required": False,
                "label": _l("Votre département", "Your department"),
                "options": departments,
                "filter_by": "situation.region",
            },
            {
                "id": "needs",
                "type": "multiple",
                "required": True,
                "min_items": 1,
                "max_items": NEEDS_MAX,
                "label": _l("De quoi avez-vous besoin ?", "What do you need?"),
                "options": _options(NEED_LABELS),
            },
            {
                "id": "message",
                "type": "text",
                "required": False,
                "max_length": MESSAGE_MAX_LENGTH,
                "label": _l("Un mot sur votre situation", "A word about your situation"),
                "help": _l(
                    "N'écrivez pas d'information sur votre santé.",
                    "Please do not write anything about your health.",
                ),
            },
            {
                "id": "consents.share_with_association",
                "type": "boolean",
                "required": True,
                "label": _l(
                    "J'accepte que mes réponses et mes coordonnées soient transmises à "
                    "l'association choisie.",
                    "I agree that my answers and contact details are passed on to the chosen "
                    "association.",
                ),
                "help": _l(
                    "Sans cet accord, vous voyez l'orientation et les ressources, mais aucune "
                    "association n'est contactée.",
                    "Without it you see the orientation and resources, but no association is "
                    "contacted.",
                ),
            },
            {
                "id": "contact.first_name",
                "type": "string",
                "required": True,
                "max_length": 60,
                "show_if": "consents.share_with_association",
                "label": _l("Prénom (un pseudonyme convient)", "First name (a pseudonym is fine)"),
            },
            {
                "id": "contact.preferred_channel",
                "type": "single",
                "required": True,
                "show_if": "consents.share_with_association",
                "label": _l(
                    "Comment préférez-vous que l'on vous contacte ?", "How should we reach you?"
                ),
                "options": _options(CHANNEL_LABELS),
            },
            {
                "id": "contact.email",
                "type": "email",
                "required": False,
                "show_if": "consents.share_with_association",
                "label": _l("Adresse e-mail", "E-mail address"),
            },
            {
                "id": "contact.phone",
                "type": "tel",
                "required": False,
                "pattern": PHONE_PATTERN,
                "show_if": "consents.share_with_association",
                "label": _l("Téléphone", "Phone"),
            },
            {
                "id": "consents.sensitive_data",
                "type": "boolean",
                "required": True,
                "show_if_value": {"distress": SENSITIVE_WHEN},
                "label": _l(
                    "J'accepte que ma réponse sur la détresse soit transmise à APESA, pour que "
                    "ses psychologues puissent m'appeler (donnée de santé).",
                    "I agree that my answer about distress is passed on to APESA, so that its "
                    "psychologists can call me (health data).",
                ),
                "help": _l(
                    "Ne concerne que les personnes qui ont répondu « Oui » à la première "
                    "question ; sinon, cette case est ignorée. Sans cet accord, rien de votre "
                    "réponse sur la détresse ne quitte le portail.",
                    'Only for people who answered "Yes" to the first question; otherwise this '
                    "box is ignored. Without it, nothing of your answer about distress leaves "
                    "the portal.",
                ),
            },
            {
                "id": "consents.statistics",
                "type": "boolean",
                "required": True,
                "label": _l(
                    "J'accepte que mes réponses servent à des statistiques anonymes.",
                    "I agree to my answers being used for anonymous statistics.",
                ),
            },
            {
                "id": "consents.event_invitations",
                "type": "boolean",
                "required": True,
                "label": _l(
                    "Je souhaite recevoir les invitations aux Conférences du rebond.",
                    "I would like invitations to the Conférences du rebond.",
                ),
            },
        ],
    }
