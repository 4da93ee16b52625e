"""Scoring: a pure function from a person's answers and the directory to ranked associations.

1. Filter: an association is left out when it is paused, does not serve the person's stage,
   has no antenna in their region and is not national, serves only people in distress and
   the person did not say they are, or (`capacity: hard`, the default) has already been
   offered its whole weekly capacity. So a full association gets nothing new while another
   suitable one has room; when none has, nobody is left and the case goes to the human queue.
2. Score what is left (weights come from the directory):
   needs served x `need`; an antenna in the region `antenna_in_region` (else `national` for a
   national association); company size taken best `size_fit`; share of this week's capacity
   still free x `capacity`; a distress association for a person in distress `distress`.
3. Rank by total, then equal totals by the directory's `tie_break` criteria in its order
   (`TieBreak`; it ends with the directory's order, so the ranking is total and deterministic:
   the same answers and loads always give the same ranking). Each candidate placed ahead of an
   equal one carries a reason naming the criterion that did it, so no tie is broken silently.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import pairwise

from rebond_contracts.associations import AssociationId
from rebond_contracts.geography import REGIONS
from rebond_contracts.payloads import Reason, ScoreBreakdown
from rebond_contracts.questionnaire import (
    CompanySize,
    Distress,
    Need,
    QuestionnaireV1,
    Region,
    Stage,
)
from rebond_router.directory import Association, Directory, TieBreak

STAGE_TEXTS: dict[Stage, tuple[str, str]] = {
    Stage.PRE_PROCEDURE: (
        "vous traversez des difficultés sans procédure en cours",
        "you are in difficulty with no court procedure yet",
    ),
    Stage.AMICABLE_PROCEDURE: (
        "vous êtes en procédure amiable (mandat ad hoc ou conciliation)",
        "you are in an amicable procedure (mandat ad hoc or conciliation)",
    ),
    Stage.SAFEGUARD: ("votre entreprise est en sauvegarde", "your company is under safeguard"),
    Stage.RECEIVERSHIP: (
        "votre entreprise est en redressement judiciaire",
        "your company is in receivership",
    ),
    Stage.LIQUIDATION_IN_PROGRESS: (
        "votre entreprise est en cours de liquidation",
        "your company is being liquidated",
    ),
    Stage.AFTER_LIQUIDATION: (
        "vous êtes après une liquidation ou une cession",
        "you are after a liquidation or a court-ordered sale",
    ),
    Stage.PROFESSIONAL_RECOVERY: (
        "vous êtes en rétablissement professionnel",
        "you are in professional recovery",
    ),
    Stage.UNSURE: (
        "vous ne savez pas encore où en est votre entreprise",
        "you are not sure of your company's stage",
    ),
}

NEED_TEXTS: dict[Need, tuple[str, str]] = {
    Need.LISTENING: ("vous souhaitez être écouté", "you want someone to listen"),
    Need.URGENT_FINANCIAL_LEGAL: (
        "vous avez une urgence de trésorerie ou juridique",
        "you have an urgent cash or legal problem",
    ),
    Need.PEER_SUPPORT: (
        "vous souhaitez échanger avec d'autres entrepreneurs",
        "you want to talk with other entrepreneurs",
    ),
    Need.MENTORING: ("vous souhaitez un parrain", "you want a mentor"),
    Need.COACHING: ("vous souhaitez un coach", "you want a coach"),
    Need.SALARIED_JOB: (
        "vous souhaitez retrouver un emploi salarié",
        "you want to find a salaried job",
    ),
    Need.NEW_BUSINESS: (
        "vous souhaitez créer une nouvelle activité",
        "you want to start a new business",
    ),
    Need.UNDERSTAND_PROCEDURES: (
        "vous souhaitez comprendre les procédures",
        "you want to understand the procedures",
    ),
}

DISTRESS_REASON = Reason(
    code="distress",
    fr="vous avez dit être en détresse : un psychologue peut vous aider très vite",
    en="you said you are in distress: a psychologist can help you very quickly",
)


@dataclass(frozen=True)
class Features:
    """All that scoring reads of a person: their stage, region, needs, company size and whether
    they said they are in distress. Nothing else of the questionnaire changes a ranking, so a
    decision replayed from these (the policy preview) ranks as it was ranked."""

    stage: Stage
    region: Region
    needs: tuple[Need, ...]
    company_size: CompanySize
    distress: bool

    @classmethod
    def of(cls, answers: QuestionnaireV1) -> "Features":
        situation = answers.situation
        return cls(
            situation.stage, situation.region, tuple(answers.needs), situation.company_size,
            answers.distress is Distress.YES,
        )  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """One association that passed the filter, with its score and the reasons to show."""

    association: AssociationId
    score: ScoreBreakdown
    reasons: tuple[Reason, ...]
    needs_served: int
    distress_only: bool
    #: What the directory's `tie_break` criteria compare (see `_tie_key`).
    stages_served: int = 0
    antenna_in_region: bool = False
    places_left: int = 0
    order: int = 0


@dataclass(frozen=True)
class Ranking:
    candidates: tuple[Candidate, ...]
    #: Why each association left out was left out (`paused`, `stage`, `region`, `distress`,
    #: `capacity`).
    excluded: Mapping[AssociationId, str]

    @property
    def full(self) -> bool:
        """Whether an association otherwise suitable was left out only because it is full."""
        return "capacity" in self.excluded.values()

    def full_among(self, associations: Iterable[AssociationId]) -> bool:
        """Whether one of `associations` (a track's) was left out only because it is full."""
        return any(self.excluded.get(a) == "capacity" for a in associations)


def rank(
    answers: QuestionnaireV1 | Features,
    directory: Directory,
    offered_this_week: Mapping[AssociationId, int],
) -> Ranking:
    """The associations that may take this person, best first."""
    person = answers if isinstance(answers, Features) else Features.of(answers)
    in_distress = person.distress
    candidates: list[Candidate] = []
    excluded: dict[AssociationId, str] = {}
    for order, entry in enumerate(directory.associations):
        offered = offered_this_week.get(entry.id, 0)
        why_not = _excluded_because(entry, person, offered)
        if why_not:
            excluded[entry.id] = why_not
            continue
        served = [need for need in person.needs if need in entry.needs]
        weights = directory.weights
        needs = weights.need * len(served)
        antenna = person.region in entry.regions
        region = weights.antenna_in_region if antenna else weights.national
        size = weights.size_fit if person.company_size in entry.company_sizes else 0.0
        capacity = weights.capacity * _share_left(entry, offered)
        distress = weights.distress if entry.distress_only and in_distress else 0.0
        total = needs + region + size + capacity + distress
        breakdown = ScoreBreakdown(
            association_id=entry.id,
            needs=round(needs, 3),
            region=round(region, 3),
            size=round(size, 3),
            capacity=round(capacity, 3),
            distress=round(distress, 3),
            total=round(total, 3),
            weekly_capacity=entry.weekly_capacity,
            offered_this_week=offered,
            response_deadline_days=entry.response_deadline_days,
            override_id=entry.override_id,
        )
        candidates.append(
            Candidate(
                association=entry.id,
                score=breakdown,
                reasons=_reasons(entry, person, served, size > 0),
                needs_served=len(served),
                distress_only=entry.distress_only,
                stages_served=len(entry.stages),
                antenna_in_region=antenna,
                places_left=max(0, entry.weekly_capacity - offered),
                order=order,
            )
        )
    rules = directory.tie_break
    candidates.sort(key=lambda c: (-c.score.total, *(_tie_key(c, rule) for rule in rules)))
    return Ranking(candidates=_tie_reasons(candidates, directory), excluded=excluded)


def _tie_key(candidate: Candidate, rule: TieBreak) -> int:
    """Smaller comes first."""
    match rule:
        case TieBreak.SPECIALIST:
            return candidate.stages_served
        case TieBreak.REGION_ANTENNA:
            return 0 if candidate.antenna_in_region else 1
        case TieBreak.CAPACITY_LEFT:
            return -candidate.places_left
        case TieBreak.DIRECTORY_ORDER:
            return candidate.order


#: Why one association comes before another of equal score, per criterion (French, English).
TIE_TEXTS: dict[TieBreak, tuple[str, str]] = {
    TieBreak.SPECIALIST: (
        "à score égal, {first} passe avant {second} : elle se consacre à moins de situations, "
        "dont la vôtre",
        "at equal score, {first} comes before {second}: it specialises in fewer situations, "
        "yours among them",
    ),
    TieBreak.REGION_ANTENNA: (
        "à score égal, {first} passe avant {second} : elle a une antenne dans votre région",
        "at equal score, {first} comes before {second}: it has an office in your region",
    ),
    TieBreak.CAPACITY_LEFT: (
        "à score égal, {first} passe avant {second} : il lui reste plus de places cette semaine",
        "at equal score, {first} comes before {second}: it has more places left this week",
    ),
    TieBreak.DIRECTORY_ORDER: (
        "à score égal, {first} passe avant {second} : elle la précède dans l'annuaire du "
        "groupement",
        "at equal score, {first} comes before {second}: it is listed before it in the "
        "grouping's directory",
    ),
}


def _tie_reasons(ranked: list[Candidate], directory: Directory) -> tuple[Candidate, ...]:
    """Each candidate of the same total as the next one gains the reason (`tie_break_<rule>`)
    of the first criterion of the directory's `tie_break` that sets them apart."""
    out = list(ranked)
    for index, (first, second) in enumerate(pairwise(ranked)):
        if first.score.total != second.score.total:
            continue
        rule = next(r for r in directory.tie_break if _tie_key(first, r) != _tie_key(second, r))
        fr, en = TIE_TEXTS[rule]
        names = {
            "first": directory.get(first.association).name,
            "second": directory.get(second.association).name,
        }
        reason = Reason(
            code=f"tie_break_{rule.value}", fr=fr.format(**names), en=en.format(**names)
        )
        out[index] = replace(first, reasons=(*first.reasons, reason))
    return tuple(out)


def _excluded_because(entry: Association, person: Features, offered: int) -> str | None:
    if entry.paused:
        return "paused"
    if person.stage not in entry.stages:
        return "stage"
    if not entry.serves_region(person.region):
        return "region"
    if entry.distress_only and not person.distress:
        return "distress"
    if is_full(entry, offered):
        return "capacity"
    return None


def is_full(entry: Association, offered: int) -> bool:
    """Whether `entry`, offered `offered` referrals this week, takes no new one: its weekly
    capacity is a hard limit (the default) and reached."""
    return entry.capacity == "hard" and offered >= entry.weekly_capacity


def full_now(
    directory: Directory, week_offers: Mapping[AssociationId, int]
) -> frozenset[AssociationId]:
    """The associations of `directory` that take no new referral this week (`is_full`)."""
    return frozenset(a.id for a in directory.associations if is_full(a, week_offers.get(a.id, 0)))


def _share_left(entry: Association, offered: int) -> float:
    if entry.weekly_capacity == 0:
        return 0.0
    return max(0, entry.weekly_capacity - offered) / entry.weekly_capacity


def _reasons(
    entry: Association, person: Features, served: list[Need], size_fits: bool
) -> tuple[Reason, ...]:
    stage = person.stage
    fr, en = STAGE_TEXTS[stage]
    reasons = [Reason(code=f"stage_{stage.value}", fr=fr, en=en)]
    if entry.distress_only and person.distress:
        reasons.append(DISTRESS_REASON)
    for need in served:
        fr, en = NEED_TEXTS[need]
        reasons.append(Reason(code=f"need_{need.value}", fr=fr, en=en))
    region = person.region
    if region in entry.regions:
        reasons.append(
            Reason(
                code="region_antenna",
                fr=f"{entry.name} a une antenne dans votre région ({REGIONS[region]})",
                en=f"{entry.name} has an office in your region ({REGIONS[region]})",
            )
        )
    else:
        reasons.append(
            Reason(
                code="national",
                fr=f"{entry.name} accompagne partout en France",
                en=f"{entry.name} helps people all over France",
            )
        )
    if size_fits:
        reasons.append(
            Reason(
                code="size_fit",
                fr=f"{entry.name} accompagne les entreprises de votre taille",
                en=f"{entry.name} helps companies of your size",
            )
        )
    return tuple(reasons)
