"""Validation errors explained in the person's language: one entry per faulty field path.

Cross-field errors of the contract (model validators) name their field in the error context as
`field`; it is appended to the location so the path points at the field to correct.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from rebond_contracts.questionnaire import MESSAGE_MAX_LENGTH, NEEDS_MAX

_MESSAGES: dict[str, tuple[str, str]] = {
    # type: (français, English)
    "missing": ("Ce champ est obligatoire.", "This field is required."),
    "extra_forbidden": ("Ce champ n'est pas attendu.", "This field is not expected."),
    "enum": ("Choisissez une des valeurs proposées.", "Choose one of the listed values."),
    "literal_error": ("Choisissez une des valeurs proposées.", "Choose one of the listed values."),
    "string_type": ("Une chaîne de caractères est attendue.", "A text value is expected."),
    "string_too_short": ("Ce champ ne peut pas être vide.", "This field cannot be empty."),
    "string_too_long": ("Ce texte est trop long.", "This text is too long."),
    "string_pattern_mismatch": ("Le format n'est pas valide.", "The format is not valid."),
    "bool_type": ("Répondez par oui ou par non.", "Answer yes or no."),
    "bool_parsing": ("Répondez par oui ou par non.", "Answer yes or no."),
    "list_type": ("Une liste de choix est attendue.", "A list of choices is expected."),
    "too_short": ("Choisissez au moins une réponse.", "Choose at least one answer."),
    "too_long": (
        f"Choisissez au plus {NEEDS_MAX} réponses.",
        f"Choose at most {NEEDS_MAX} answers.",
    ),
    "model_type": ("Un objet JSON est attendu.", "A JSON object is expected."),
    "model_attributes_type": ("Un objet JSON est attendu.", "A JSON object is expected."),
    "dict_type": ("Un objet JSON est attendu.", "A JSON object is expected."),
    "json_invalid": ("Le document JSON est mal formé.", "The JSON document is malformed."),
    "unknown_department": ("Ce département n'existe pas.", "This department does not exist."),
    "department_region_mismatch": (
        "Ce département n'appartient pas à la région choisie.",
        "This department is not in the chosen region.",
    ),
    "preferred_channel_empty": (
        "Renseignez le moyen de contact que vous avez choisi.",
        "Fill in the contact channel you chose.",
    ),
    "contact_required": (
        "Indiquez comment l'association peut vous joindre, puisque vous acceptez le partage.",
        "Tell us how the association can reach you, since you agreed to sharing.",
    ),
    "contact_without_consent": (
        "Vos coordonnées ne sont transmises qu'avec votre accord de partage : cochez-le ou "
        "retirez-les.",
        "Contact details are only passed on with your consent to share: tick it or remove them.",
    ),
    "needs_not_distinct": (
        "Chaque besoin ne peut être choisi qu'une fois.",
        "Each need may be chosen only once.",
    ),
    "invalid_characters": (
        "Le texte contient des caractères invalides.",
        "The text contains invalid characters.",
    ),
}

_EMAIL = ("Cette adresse e-mail n'est pas valide.", "This e-mail address is not valid.")
_PHONE = (
    "Ce numéro n'est pas valide (format français 06 12 34 56 78 ou international +33…).",
    "This number is not valid (French format 06 12 34 56 78 or international +33…).",
)
_MESSAGE_LONG = (
    f"Votre message dépasse {MESSAGE_MAX_LENGTH} caractères.",
    f"Your message is longer than {MESSAGE_MAX_LENGTH} characters.",
)
_FALLBACK = ("Cette valeur n'est pas valide.", "This value is not valid.")


def request_locale(body: object, accept_language: str | None) -> str:
    """`en` when the body says `locale: "en"` or, failing that, Accept-Language prefers English."""
    if isinstance(body, Mapping):
        declared = body.get("locale")
        if declared in ("fr", "en"):
            return str(declared)
    if accept_language:
        first = accept_language.split(",")[0].strip().lower()
        if first.startswith("en"):
            return "en"
    return "fr"


def _location(error: Mapping[str, Any]) -> list[str | int]:
    loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
    # Pydantic may name a union member in the path (e.g. "function-after[...]"): not a field.
    loc = [p for p in loc if not (isinstance(p, str) and "[" in p and p.endswith("]"))]
    ctx = error.get("ctx") or {}
    field = ctx.get("field") if isinstance(ctx, Mapping) else None
    if isinstance(field, str) and (not loc or loc[-1] != field):
        loc.append(field)
    return loc


def _message(kind: str, loc: Sequence[str | int], lang: int) -> str:
    last = loc[-1] if loc else None
    if last == "email" and kind in ("value_error", "string_type", "string_pattern_mismatch"):
        return _EMAIL[lang]
    if last == "phone" and kind in ("string_pattern_mismatch", "string_type"):
        return _PHONE[lang]
    if last == "message" and kind == "string_too_long":
        return _MESSAGE_LONG[lang]
    return _MESSAGES.get(kind, _FALLBACK)[lang]


def localise(errors: Sequence[Mapping[str, Any]], locale: str) -> list[dict[str, Any]]:
    """One entry per faulty path: `loc`, `path` (dotted, without `body`), `type` and `msg`."""
    lang = 1 if locale == "en" else 0
    out: dict[tuple[str | int, ...], dict[str, Any]] = {}
    for error in errors:
        kind = str(error.get("type", "value_error"))
        loc = _location(error)
        key = tuple(loc)
        if key in out:
            continue
        path = ".".join(str(p) for p in loc[1:] if p != "body") if loc else ""
        out[key] = {"loc": loc, "path": path, "type": kind, "msg": _message(kind, loc, lang)}
    return list(out.values())
