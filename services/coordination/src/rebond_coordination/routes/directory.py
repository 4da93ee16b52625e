"""The live directory (#21 item 4) and the policy preview (#21)."""

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from rebond_contracts.associations import AssociationId
from rebond_coordination.domain import association_name
from rebond_coordination.ports import (
    DirectoryOverride,
    PreviewRejected,
    PreviewResult,
    PreviewUnavailable,
)
from rebond_coordination.store import new_id
from rebond_coordination.web import (
    Deps,
    Editor,
    Form,
    NotFound,
    Previewer,
    Signed,
    field,
    render,
    see_other,
)

router = APIRouter(include_in_schema=False)
MAX_DIRECTORY_BYTES = 256 * 1024


async def _directory_page(
    request: Request, signed: Signed, deps: Deps, *, errors: dict[str, list[tuple[str, str]]] | None = None,
    values: dict[str, dict[str, str]] | None = None, status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    effective, overrides = await deps.store.directory()
    unsent = await deps.store.unsent_ids()
    rows = [
        {
            "id": a.value, "name": association_name(a.value), "values": effective.get(a.value),
            "pending": [o for o in overrides if o.association_id == a.value and o.applied_at is None],
        }
        for a in AssociationId
    ]  # fmt: skip
    return render(
        request, "directory.html",
        {"rows": rows, "overrides": overrides[:50], "unsent": unsent, "errors": errors or {},
         "values": values or {}},
        signed=signed, status_code=status_code,
    )  # fmt: skip


@router.get("/annuaire", response_class=HTMLResponse)
async def directory(request: Request, signed: Editor, deps: Deps) -> HTMLResponse:
    return await _directory_page(request, signed, deps)


@router.post("/annuaire/{association}", response_class=HTMLResponse)
async def override(
    request: Request, association: str, signed: Editor, form: Form, deps: Deps
) -> Response:
    """Ask the router to change an association's values at once. Empty fields stay as they
    are; the override shows "en attente" until the router says it applied it."""
    if association not in {a.value for a in AssociationId}:
        raise NotFound()
    paused_text, capacity_text = field(form, "paused"), field(form, "weekly_capacity")
    deadline_text, note = field(form, "response_deadline_days"), field(form, "note")
    prefix = f"{association}-"
    errors: list[tuple[str, str]] = []
    paused = {"": None, "pause": True, "reprise": False}.get(paused_text, "invalid")
    if paused == "invalid":
        errors.append((prefix + "paused", "Choisissez : inchangé, mettre en pause ou reprendre."))
    capacity = _number(capacity_text, int, 0, 10_000)
    if capacity == "invalid":
        errors.append(
            (
                prefix + "weekly_capacity",
                "La capacité hebdomadaire est un nombre entier entre 0 et 10 000.",
            )
        )
    deadline = _number(deadline_text.replace(",", "."), float, 0.04, 60)
    if deadline == "invalid":
        errors.append(
            (
                prefix + "response_deadline_days",
                "Le délai de réponse est un nombre de jours entre 0,04 (une heure) et 60.",
            )
        )
    if not errors and paused is None and capacity is None and deadline is None:
        errors.append((prefix + "paused", "Indiquez au moins un changement."))
    if len(note) > 500:
        errors.append((prefix + "note", "La note fait plus de 500 caractères."))
    if errors:
        values = {association: {"paused": paused_text, "weekly_capacity": capacity_text,
                                "response_deadline_days": deadline_text, "note": note}}  # fmt: skip
        return await _directory_page(
            request, signed, deps, errors={association: errors}, values=values, status_code=422
        )
    message = DirectoryOverride(
        message_id=new_id(), at=deps.clock(), association_id=association,
        paused=paused, weekly_capacity=capacity, response_deadline_days=deadline, note=note,
        set_by=signed.user.id,
    )  # fmt: skip
    await deps.store.request_override(signed.scope, message, message.at)
    await deps.relay.flush_quietly()
    return see_other(f"/annuaire?fait=ajustement#{association}")


def _number(
    text: str, kind: type[int] | type[float], low: float, high: float
) -> int | float | str | None:
    """None for an empty field, the number when it is within bounds, else 'invalid'."""
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        return "invalid"
    return value if low <= value <= high else "invalid"


# --- policy preview -------------------------------------------------------------------------


@router.get("/apercu", response_class=HTMLResponse)
async def preview_form(request: Request, signed: Previewer) -> HTMLResponse:
    return render(
        request, "preview.html", {"errors": [], "text": "", "result": None}, signed=signed
    )


@router.post("/apercu", response_class=HTMLResponse)
async def preview(request: Request, signed: Previewer, form: Form, deps: Deps) -> HTMLResponse:
    """Send the candidate directory to the router's preview and show what would change."""
    text = str(form.get("directory") or "")
    upload = form.get("file")
    errors: list[tuple[str, str]] = []
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_DIRECTORY_BYTES + 1)
        if len(raw) > MAX_DIRECTORY_BYTES:
            errors.append(("file", "Le fichier dépasse 256 Kio."))
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(("file", "Le fichier n'est pas un texte UTF-8 (un directory.yaml)."))
    if not errors and not text.strip():
        errors.append(
            ("directory", "Collez le contenu d'un directory.yaml ou choisissez le fichier.")
        )
    if not errors and len(text.encode()) > MAX_DIRECTORY_BYTES:
        errors.append(("directory", "Le texte dépasse 256 Kio."))
    result = None
    if not errors:
        try:
            result = await deps.preview.preview(text)
        except PreviewRejected as rejected:
            where = " ".join(
                part for part in (
                    f"association « {rejected.association} »" if rejected.association else "",
                    f"champ « {rejected.field} »" if rejected.field else "",
                ) if part
            )  # fmt: skip
            errors.append(
                (
                    "directory",
                    f"Le routeur refuse ce fichier ({where or 'fichier'}) : {rejected.message}",
                )
            )
        except PreviewUnavailable:
            errors.append(("directory", "Le routeur ne répond pas pour l'instant : réessayez dans "
                                        "quelques minutes."))  # fmt: skip
    if result is not None:
        await deps.store.log(
            signed.scope, "preview_run", deps.clock(), after_version=result.after_version
        )
    return render(
        request, "preview.html",
        {"errors": errors, "text": text, "result": result,
         **(_matrix(result) if result else {})},
        signed=signed, status_code=422 if errors else 200,
    )  # fmt: skip


QUEUE_LABEL = "la file humaine"


def _row_label(key: str | None) -> str:
    """An association's name, or the human queue, as a table's row or column heading."""
    return association_name(key) if key else "File humaine"


def _matrix(result: PreviewResult) -> dict[str, object]:
    """The before-by-after table, the totals per association, and one sentence per shift."""
    names = [a.value for a in AssociationId]
    keys: list[str | None] = [*names, None]
    cells = Counter[tuple[str | None, str | None]]()
    for move in result.moves:
        cells[(move.before, move.after)] += move.count
    before = Counter[str | None]()
    after = Counter[str | None]()
    for (b, a), count in cells.items():
        before[b] += count
        after[a] += count

    def label(key: str | None) -> str:
        return association_name(key) if key else QUEUE_LABEL

    sentences = []
    for (b, a), count in sorted(cells.items(), key=lambda item: -item[1]):
        if b != a and count:
            verb = "irait" if count == 1 else "iraient"
            who = "personne" if count == 1 else "personnes"
            where = f"à {label(a)}" if a else f"dans {QUEUE_LABEL}"
            sentences.append(f"{count} {who} {verb} {where} au lieu de {label(b)}.")
    return {
        "keys": keys, "cells": cells, "before": before, "after": after,
        "label": _row_label,
        "sentences": sentences, "total": sum(cells.values()),
    }  # fmt: skip
