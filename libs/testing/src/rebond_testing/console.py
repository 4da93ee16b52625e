"""What a person does in the coordination console, in Playwright's async API: the steps the
console's own browser tests and the end-to-end ones both take, written once so that a change to
a label or a message is made in one place (and both tests keep checking the same thing)."""

from playwright.async_api import Page, expect


async def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in at `base_url`'s sign-in page as `email`; returns once the page offers to sign
    out (the session cookie is set, the next page is the person's own)."""
    await page.goto(f"{base_url}/connexion")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(password)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()


async def accept_and_record_contact(page: Page, caller: str) -> None:
    """On a referral's page: accept it, `caller` being who will call the person, then record
    that the person was contacted; each step is checked by the status the page shows after it."""
    await page.get_by_label("J'accepte : nous contactons la personne").check()
    await page.get_by_label("qui appellera la personne").fill(caller)
    await page.get_by_role("button", name="Envoyer ma réponse").click()
    await expect(page.get_by_role("status").first).to_contain_text("Vous avez accepté")
    await page.get_by_label("Personne contactée le…").check()
    await page.get_by_role("button", name="Noter le suivi").click()
    await expect(page.get_by_role("status").first).to_contain_text("Suivi enregistré")
