"""The questionnaire as an HTML form: posted fields to the contract's JSON, errors to a summary."""

from typing import Any

import pytest
from pydantic import ValidationError

from rebond_contracts.questionnaire import QuestionnaireV1
from rebond_intake.errors import localise
from rebond_intake.form_input import FormError, form_errors, to_questionnaire

VALID: dict[str, list[str]] = {
    "distress": ["no"],
    "situation.stage": ["after_liquidation"],
    "situation.company_size": ["1-9"],
    "situation.region": ["75"],
    "situation.department": ["33"],
    "needs": ["mentoring", "new_business"],
    "consents.share_with_association": ["yes"],
    "contact.first_name": ["Claire"],
    "contact.preferred_channel": ["email"],
    "contact.email": ["claire@example.org"],
}


class Form(dict[str, list[str]]):
    def getlist(self, key: str) -> list[Any]:
        return self.get(key, [])


def errors_of(fields: dict[str, list[str]], locale: str = "fr") -> list[FormError]:
    try:
        QuestionnaireV1.model_validate(to_questionnaire(Form(fields), locale))
    except ValidationError as error:
        located = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        return form_errors(localise(located, locale), locale)
    return []


def test_a_valid_form_is_the_contracts_questionnaire() -> None:
    """A filled form becomes a questionnaire the contract accepts, the ticked boxes true."""
    body = to_questionnaire(Form(VALID), "fr")
    questionnaire = QuestionnaireV1.model_validate(body)
    assert questionnaire.consents.share_with_association is True
    assert questionnaire.consents.statistics is False
    assert [n.value for n in questionnaire.needs] == ["mentoring", "new_business"]


def test_contact_fields_are_dropped_without_the_consent_to_share() -> None:
    """Without the consent to share, contact fields left in the form are not sent."""
    fields = {**VALID, "consents.share_with_association": []}
    assert "contact" not in to_questionnaire(Form(fields), "fr")
    assert errors_of(fields) == []


@pytest.mark.parametrize(
    ("change", "question", "target", "text"),
    [
        ({"distress": []}, "distress", "q-distress-0",
         "Vous sentez-vous en détresse, ou avez-vous des idées noires ? — Ce champ est obligatoire."),
        ({"situation.stage": []}, "situation.stage", "q-situation-stage-0",
         "Où en est votre entreprise ? — Ce champ est obligatoire."),
        ({"situation.company_size": ["12"]}, "situation.company_size", "q-situation-company_size-0",
         "Combien de salariés ? — Choisissez une des valeurs proposées."),
        ({"situation.region": []}, "situation.region", "q-situation-region",
         "Votre région — Ce champ est obligatoire."),
        ({"situation.department": ["13"]}, "situation.department", "q-situation-department",
         "Votre département — Ce département n'appartient pas à la région choisie."),
        ({"needs": []}, "needs", "q-needs-0",
         "De quoi avez-vous besoin ? — Choisissez au moins une réponse."),
        ({"message": ["x" * 601]}, "message", "q-message",
         "Un mot sur votre situation — Votre message dépasse 600 caractères."),
        ({"contact.first_name": []}, "contact.first_name", "q-contact-first_name",
         "Prénom (un pseudonyme convient) — Ce champ est obligatoire."),
        ({"contact.email": ["claire@"]}, "contact.email", "q-contact-email",
         "Adresse e-mail — Cette adresse e-mail n'est pas valide."),
        ({"contact.phone": ["12"]}, "contact.phone", "q-contact-phone",
         "Téléphone — Ce numéro n'est pas valide (format français 06 12 34 56 78 ou "
         "international +33…)."),
    ],
)  # fmt: skip
def test_each_invalid_field_gets_its_question_named_and_a_link_to_it(
    change: dict[str, list[str]], question: str, target: str, text: str
) -> None:
    """Each faulty answer gives one summary line naming its question and linking its input."""
    errors = errors_of({**VALID, **change})
    assert [(e.question_id, e.target, e.text) for e in errors] == [(question, target, text)]


def test_every_missing_answer_is_listed_in_page_order() -> None:
    """An empty form lists each required question once, in the order of the page."""
    errors = errors_of({})
    assert [e.question_id for e in errors] == [
        "distress", "situation.stage", "situation.company_size", "situation.region", "needs",
    ]  # fmt: skip


def test_errors_are_in_english_with_lang_en() -> None:
    """With the English page, the question and the message are in English."""
    (error,) = errors_of({**VALID, "needs": []}, "en")
    assert error.text == "What do you need? — Choose at least one answer."
