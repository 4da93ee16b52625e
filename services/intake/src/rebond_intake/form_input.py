"""The questionnaire as a plain HTML form: what the browser posts, turned into the contract's
JSON, and the contract's errors turned into an error summary a person can follow.

Pure: no I/O. The page (`pages.py`) validates the result with the same model and submits it
through the same use case as `POST /v1/submissions`, so the form cannot accept what the API
refuses, nor the other way round. Field names are the question ids of `questionnaire_form()`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rebond_intake.questionnaire_form import questionnaire_form


class FormData(Protocol):
    """What Starlette's `FormData` offers (and a dict of lists in tests)."""

    def getlist(self, key: str) -> list[Any]: ...


def field_id(question_id: str) -> str:
    """The HTML id of a question's first input: what an error link points at."""
    return "q-" + question_id.replace(".", "-")


def questions() -> list[dict[str, Any]]:
    return list(questionnaire_form()["questions"])


def _set(body: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def to_questionnaire(form: FormData, locale: str) -> dict[str, Any]:
    """The JSON body the form stands for. A checkbox is true when posted; contact details are
    sent only with the consent to share (as the contract wants); an empty optional answer is
    left out; an unanswered required one too, so that the contract says it is missing."""
    # The groups exist even when empty, so that each missing answer is named, not the group.
    body: dict[str, Any] = {"locale": locale, "situation": {}, "consents": {}}
    sharing = bool(form.getlist("consents.share_with_association"))
    for question in questions():
        qid: str = question["id"]
        raw = [str(v).strip() for v in form.getlist(qid)]
        if qid.startswith("contact.") and not sharing:
            continue
        if question["type"] == "boolean":
            _set(body, qid, bool(raw))
        elif question["type"] == "multiple":
            _set(body, qid, [v for v in raw if v])
        elif raw and raw[0]:
            _set(body, qid, raw[0])
    if sharing and "contact" not in body:
        body["contact"] = {}
    return body


@dataclass(frozen=True)
class FormError:
    """One line of the error summary, and the message beside the field."""

    question_id: str
    #: The id of the input the summary links to (`#...`).
    target: str
    #: "Question ? : what is wrong", in the page's language.
    text: str
    #: What is wrong, alone: shown beside the field.
    message: str


def _question_for(path: str, ids: Sequence[str]) -> str | None:
    """The question a contract path belongs to (`contact` -> its first field)."""
    while path:
        if path in ids:
            return path
        child = next((q for q in ids if q.startswith(path + ".")), None)
        if child is not None:
            return child
        path = path.rpartition(".")[0]
    return None


def form_errors(detail: Sequence[Mapping[str, Any]], locale: str) -> list[FormError]:
    """The localised 422 entries (`errors.localise`) as summary lines, one per question, in
    the order the questions come on the page; an error on no question (the whole body) names
    the form."""
    lang = "en" if locale == "en" else "fr"
    by_id = {q["id"]: q for q in questions()}
    ids = list(by_id)
    found: dict[str, FormError] = {}
    for entry in detail:
        qid = _question_for(str(entry.get("path", "")), ids) or ids[0]
        if qid in found:
            continue
        question = by_id[qid]
        target = field_id(qid) + ("-0" if question["type"] in ("single", "multiple") else "")
        label = str(question["label"][lang]).rstrip(" .")
        message = str(entry["msg"])
        found[qid] = FormError(qid, target, f"{label} — {message}", message)
    return sorted(found.values(), key=lambda e: ids.index(e.question_id))
