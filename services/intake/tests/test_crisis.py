"""Crisis words: which free texts show the 3114 at once, and which business sentences do not."""

from pathlib import Path

import pytest
import yaml

from rebond_intake.crisis import (
    LexiconError,
    clauses,
    lexicon,
    matched_entry,
    mentions_crisis,
    parse_lexicon,
)

PACKAGED = Path(__file__).resolve().parents[1] / "src" / "rebond_intake" / "crisis_lexicon.yaml"

#: Messages that must show the helpline, and the entry that catches each.
MUST_MATCH = [
    # French
    ("Je veux en finir.", "en-finir"),
    ("J'ai envie d'en finir, je ne vois pas d'autre issue", "en-finir"),
    ("je veux en finir une bonne fois pour toutes", "en-finir"),
    ("Je pense à en finir avec la vie", "en-finir-avec-la-vie"),
    ("parfois j'ai envie d'en finir avec moi-même", "en-finir-avec-la-vie"),
    ("Je veux en finir avec tout ça", "en-finir-avec-tout"),
    ("Je pense à me suicider depuis la liquidation", "suicide"),
    ("J’ai des idées suicidaires", "suicide"),
    ("J'ai fait une tentative de suicide l'an dernier", "suicide"),
    ("J'ai pensé au suicide. Commercial de formation, je cherche un poste", "suicide"),
    ("Je veux mettre fin à mes jours", "mettre-fin-a-mes-jours"),
    ("je mettrai fin à ma vie si la banque refuse", "mettre-fin-a-mes-jours"),
    ("Mon associé a mis fin à ses jours en mars", "mettre-fin-a-mes-jours"),
    ("mon frère s'est donné la mort", "mettre-fin-a-mes-jours"),
    ("Je n'ai plus envie de vivre", "plus-envie-de-vivre"),
    ("Je n’ai plus le goût de vivre", "plus-envie-de-vivre"),
    ("Je n'ai plus goût à la vie depuis la vente du fonds", "plus-envie-de-vivre"),
    ("je n'ai plus la force de vivre", "plus-envie-de-vivre"),
    ("La vie ne vaut plus la peine", "la-vie-ne-vaut-plus"),
    ("Ma vie n'a plus de sens sans mon entreprise", "la-vie-ne-vaut-plus"),
    ("je n'ai plus aucune raison de vivre", "la-vie-ne-vaut-plus"),
    ("J'ai envie de mourir", "envie-de-mourir"),
    ("ce serait mieux si j'étais mort", "envie-de-mourir"),
    ("Mieux vaut être morte que ruinée", "envie-de-mourir"),
    ("pour moi la mort est la seule solution", "envie-de-mourir"),
    ("Je vais me tuer", "me-tuer"),
    ("j'ai pensé à me tuer pour que ma famille touche l'assurance", "me-tuer"),
    ("J'ai envie de me flinguer", "me-tuer"),
    ("Je vais me foutre en l'air", "me-foutre-en-l-air"),
    ("j'ai pensé à me pendre dans l'atelier", "me-foutre-en-l-air"),
    ("je vais me jeter sous un train", "me-foutre-en-l-air"),
    ("je vais me tirer une balle", "me-foutre-en-l-air"),
    ("J'ai des idées noires tous les soirs", "idees-noires"),
    ("une idée noire me poursuit", "idees-noires"),
    ("je voudrais disparaître", "disparaitre"),
    ("Ils seraient mieux sans moi", "mieux-sans-moi"),
    ("Plus rien ne me retient", "mieux-sans-moi"),
    ("je regrette d'être née", "mieux-sans-moi"),
    ("m'endormir et ne plus jamais me réveiller", "mieux-sans-moi"),
    ("j'ai peur de me faire du mal", "me-faire-du-mal"),
    ("je me scarifie depuis la faillite", "me-faire-du-mal"),
    ("des épisodes d'automutilation", "me-faire-du-mal"),
    ("des épisodes d'auto-mutilation", "me-faire-du-mal"),
    # English
    ("I want to kill myself", "kill-myself"),
    ("I have thought about killing myself", "kill-myself"),
    ("I want to end my life", "end-my-life"),
    ("sometimes I think about ending it all", "end-my-life"),
    ("I feel suicidal", "suicide"),
    ("I just want to die", "want-to-die"),
    ("everyone would be better off without me", "want-to-die"),
    ("I wish I was dead", "want-to-die"),
    ("I have no reason to live", "no-reason-to-live"),
    ("I don't want to live anymore", "no-reason-to-live"),
    ("I've been self-harming again", "self-harm"),
    ("I keep hurting myself", "self-harm"),
]

#: Business sentences (and close calls) that must NOT show the helpline, with why.
MUST_NOT_MATCH = [
    ("Liquidation clôturée en mars, je veux relancer une activité.", "the contract's example"),
    ("Ma société est en liquidation judiciaire", "procedure vocabulary"),
    ("redressement judiciaire, cessation des paiements, sauvegarde", "procedure vocabulary"),
    ("je veux en finir avec cette procédure", "decided: en finir avec + a thing"),
    ("J'aimerais en finir au plus vite avec ce dossier", "en finir ... avec + a thing"),
    ("Pour en finir avec les impayés, j'ai besoin d'aide", "idiom 'pour en finir avec'"),
    ("je veux en finir avec tout ce stress administratif", "en finir avec tout + a thing"),
    ("Je dois mettre fin à mon activité", "ending the business"),
    ("mettre un terme à mon bail commercial", "ending a lease"),
    ("Ce serait un suicide commercial de baisser les prix", "business figure of speech"),
    ("un suicide économique pour la boîte", "business figure of speech"),
    ("Lowering prices now would be commercial suicide", "business figure of speech"),
    ("J'essaie de tuer le temps en attendant le jugement", "idiom"),
    ("Je n'arrive pas à finir le mois", "cash flow"),
    ("Mon entreprise est en train de mourir", "business metaphor, no first-person wish"),
    ("la boîte est morte, je suis mort de fatigue", "bare death words"),
    ("Je me tue à la tâche depuis des mois", "idiom"),
    ("je vais me tuer au travail pour rembourser", "idiom"),
    ("je vais me tirer une balle dans le pied si je signe", "idiom"),
    ("Ça a foutu en l'air mon entreprise", "not reflexive: the business, not the person"),
    ("je n'ai plus envie de vivre ça une deuxième fois", "living through a situation"),
    ("je n'ai pas envie de vivre à crédit", "living on credit"),
    ("je veux tout arrêter et passer à autre chose", "left out: stopping the business"),
    ("je n'en peux plus de cette paperasse", "left out: exhaustion, asked by the question"),
    ("je suis au bout du rouleau, plus rien n'a de sens", "left out: hopelessness, ditto"),
    ("Les idées ne manquent pas pour relancer", "idée without noire"),
    ("la trésorerie est dans le noir", "noir without idée"),
    ("je voudrais disparaître des radars quelques semaines", "idiom: lie low"),
    ("je veux faire disparaître mes dettes", "making debts disappear"),
    ("pendant la procédure, le mandataire a tout vendu", "pendant is not pendre"),
    ("The deadline is killing me", "bare kill"),
    ("I'm killing myself working 80 hours a week", "idiom"),
    ("I want to end my contract with the landlord", "ending a contract"),
    ("I'd like to take my life savings out of the company", "life savings"),
    ("I cut myself a smaller salary this year", "paying oneself less"),
    ("the business is dying and the stock is dead", "bare death words"),
    ("we need to kill the project", "bare kill"),
    ("I don't want to shoot myself in the foot", "idiom"),
]


@pytest.mark.parametrize(("text", "entry"), MUST_MATCH, ids=[t for t, _ in MUST_MATCH])
def test_messages_that_speak_of_suicide_or_self_harm_match(text: str, entry: str) -> None:
    """Each cry for help is caught, by the entry meant to catch it."""
    assert matched_entry(text) == entry
    assert mentions_crisis(text)


@pytest.mark.parametrize(("text", "why"), MUST_NOT_MATCH, ids=[t for t, _ in MUST_NOT_MATCH])
def test_business_sentences_do_not_match(text: str, why: str) -> None:
    """Business vocabulary and idioms that share words with the lexicon show no helpline."""
    assert matched_entry(text) is None, why
    assert not mentions_crisis(text)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("j'ai des idées noires", "idees-noires"),
        ("J'AI DES IDÉES NOIRES", "idees-noires"),
        ("j'ai des idees noires", "idees-noires"),
        ("j’ai des  idées\tnoires", "idees-noires"),
        ("  des   Idées    noires  ", "idees-noires"),
        ("je vais me foutre en l'air", "me-foutre-en-l-air"),
        ("je vais me foutre en l’air", "me-foutre-en-l-air"),
        ("je vais me foutre en lʼair", "me-foutre-en-l-air"),
        ("je vais me foutre en l‘air", "me-foutre-en-l-air"),
        ("je vais me foutre en l`air", "me-foutre-en-l-air"),
        ("je vais me foutre en l air", "me-foutre-en-l-air"),
        ("j'ai le cœur lourd, je veux en finir", "en-finir"),
    ],
)
def test_case_accents_apostrophes_and_spaces_do_not_matter(text: str, entry: str) -> None:
    """However the person types it (capitals, accents, any apostrophe, spaces), it matches."""
    assert matched_entry(text) == entry


def test_an_expression_does_not_span_two_clauses() -> None:
    """Punctuation ends a clause: words on both sides of it do not make an expression."""
    assert matched_entry("Des idées. Noires sont mes nuits") is None
    assert matched_entry("je veux en finir, avec tout ça") == "en-finir"
    assert clauses("Je veux, en finir!  Vite") == ["je veux", "en finir", "vite"]


@pytest.mark.parametrize(
    "text", ["je n'ai pas d'idées noires", "I don't want to kill myself", "pas envie de mourir"]
)
def test_negation_is_not_read_so_a_denial_still_shows_the_helpline(text: str) -> None:
    """Deliberate: a false positive shows a helpline; misreading a negation would hide one."""
    assert mentions_crisis(text)


def test_every_entry_has_an_example_that_must_match() -> None:
    """An entry added to the lexicon without an example here fails, so each one is tested."""
    entries = {entry["id"] for entry in yaml.safe_load(PACKAGED.read_text())["entries"]}
    assert entries == {entry for _, entry in MUST_MATCH}


def test_the_lexicon_is_loaded_once() -> None:
    """The file is read and compiled on first use and then kept for the process."""
    assert lexicon() is lexicon()
    assert lexicon().version


def lexicon_with(**entry: object) -> str:
    """A minimal valid lexicon document whose only entry is changed as given."""
    document = {
        "version": "test",
        "sources": [
            {
                "id": "s",
                "url": "https://example.org/signs",
                "title": "warning signs",
                "published": None,
                "checked": "2026-12-06",
            }
        ],
        "entries": [{"id": "e", "lang": ["fr"], "forms": ["idées noires"], "sources": ["s"]}],
    }
    document["entries"][0].update(entry)  # type: ignore[index]
    return yaml.safe_dump(document, allow_unicode=True)


def test_a_minimal_lexicon_loads() -> None:
    """The base document of the refusal table is itself valid, so each refusal has one cause."""
    assert parse_lexicon(lexicon_with()).match("des idées noires") == "e"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (lexicon_with(sources=["nowhere"]), "entry 'e' cites unknown sources: nowhere"),
        (lexicon_with(sources=[]), "entries.e.sources: List should have at least 1 item"),
        (lexicon_with(forms=["me*"]), "stem 'me*' is shorter than 4 letters"),
        (lexicon_with(forms=["sui*cide"]), "'*' must end a word"),
        (lexicon_with(forms=["(en finir|)"]), "has an empty expression or alternative"),
        (lexicon_with(forms=["(en finir"]), "is not a valid expression"),
        (lexicon_with(unless_followed_by=["(avec"]), "entry 'e': '(avec' is not a valid"),
        (lexicon_with(lang=["de"]), "entries.e.lang.0: Input should be 'fr' or 'en'"),
        (lexicon_with(sourcess=["s"]), "entries.e.sourcess: Extra inputs are not permitted"),
        (
            lexicon_with().replace("https://example.org", "http://example.org"),
            "sources.s.url: Value error, must be an https address",
        ),
        (lexicon_with().replace("checked: '2026-12-06'", ""), "sources.s.checked: Field required"),
        ("entries: [unclosed", "not valid YAML"),
    ],
    ids=[
        "unknown-source",
        "no-source",
        "short-stem",
        "inner-star",
        "empty-alternative",
        "unbalanced",
        "bad-exception",
        "unknown-language",
        "misspelt-key",
        "http-source",
        "undated-source",
        "not-yaml",
    ],
)
def test_the_loader_refuses_an_unsourced_or_broken_lexicon(document: str, expected: str) -> None:
    """A lexicon entry without a listed source, or that cannot be read, is refused by name."""
    with pytest.raises(LexiconError) as caught:
        parse_lexicon(document)
    assert expected in str(caught.value)


def test_two_entries_cannot_share_an_id() -> None:
    """Ids name entries in reviews and tests, so each must be unique."""
    document = yaml.safe_load(lexicon_with())
    document["entries"].append(dict(document["entries"][0]))
    with pytest.raises(LexiconError, match="entry ids listed twice: e"):
        parse_lexicon(yaml.safe_dump(document))
