"""Help for a person in distress, shown at once (in the 202 reply and on the page)."""

from pydantic import BaseModel


class Resource(BaseModel):
    id: str
    name: str
    phone: str | None
    url: str | None
    fr: str
    en: str


RESOURCES: list[Resource] = [
    Resource(
        id="3114",
        name="3114",
        phone="3114",
        url="https://3114.fr",
        fr="Numéro national de prévention du suicide : gratuit, 24 h/24 et 7 j/7, "
        "des professionnels vous écoutent.",
        en="French national suicide-prevention line: free, 24/7, professionals listen to you.",
    ),
    Resource(
        id="emergency",
        name="15 (SAMU) / 112",
        phone="15",
        url=None,
        fr="En cas de danger immédiat, appelez le 15 (SAMU) ou le 112.",
        en="If you are in immediate danger, call 15 (SAMU) or 112.",
    ),
    Resource(
        id="apesa",
        name="APESA",
        phone=None,
        url="https://www.apesa-france.com",
        fr="Soutien psychologique gratuit et confidentiel pour les entrepreneurs en "
        "difficulté, par un psychologue proche de chez vous.",
        en="Free, confidential psychological support for entrepreneurs in difficulty, "
        "from a psychologist near you.",
    ),
]
