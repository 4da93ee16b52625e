"""The committed AsyncAPI document matches the router's declared subscribers and publishers."""

from rebond_router.asyncapi import DOCUMENT, render


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    """Change a handler, publisher or payload and this fails until the document is regenerated
    (`uv run python -m rebond_router.asyncapi --write`)."""
    assert DOCUMENT.read_text() == render()


def test_the_document_describes_every_topic_the_router_reads_and_writes() -> None:
    """Inputs (questionnaires, each association's answers) and outputs all appear, typed."""
    text = DOCUMENT.read_text()
    for channel in (
        "questionnaires.completed",
        "responses.apesa",
        "routing.decisions",
        "routing.outcomes",
        "routing.invitees",
        "peers.requests",
        "referrals.status",
        "referrals.unrouted",
        "deadletter.router",
    ):
        assert f"address: {channel}" in text
    for schema in (
        "QuestionnaireCompletedV1", "ReferralResponseV1", "UnroutedReferralV1",
        "RoutingOutcomeV1", "InviteeV1", "PeerRequestV1",
    ):  # fmt: skip
        assert f"#/components/schemas/{schema}" in text
