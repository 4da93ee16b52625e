"""The grouping's data-protection contact, the same in every service that shows it to people
(intake's privacy page, the notifier's e-mails), under each service's prefix
(`INTAKE_PRIVACY_CONTACT`, `NOTIFIER_PRIVACY_CONTACT`): a service's settings class derives from
`PrivacyContactSettings`. One setting per service rather than a constant, because the address
is the grouping's, not the code's: it changes without a release, and a development address
must never reach a person in production (refused there)."""

from typing import Annotated

from pydantic import Field

from rebond_service.settings import ServiceSettings

#: The development address; refused in production.
DEVELOPMENT_PRIVACY_CONTACT = "donnees-personnelles@rebond.example"
#: An e-mail address, plainly: something@domain.tld, no spaces.
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class PrivacyContactSettings(ServiceSettings):
    """Mixed in after the service's base (`class XSettings(KafkaServiceSettings,
    PrivacyContactSettings)`): its production check joins the others (`production_problems`
    is cooperative), so production names every problem at once."""

    #: Where a person writes about their data (access, correction, questions): art. 13's
    #: contact, on the privacy page and in the person's e-mails.
    privacy_contact: EmailAddress = DEVELOPMENT_PRIVACY_CONTACT

    def production_problems(self) -> list[str]:
        mine = (
            [f"{self.prefix}PRIVACY_CONTACT must be the grouping's data-protection address "
             "(the development address is refused)"]
            if self.privacy_contact == DEVELOPMENT_PRIVACY_CONTACT
            else []
        )  # fmt: skip
        return [*mine, *super().production_problems()]
