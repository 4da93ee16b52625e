// Rebond portal: progressive enhancement of the server-rendered pages (they work without it).
// Shows the help panel and the art. 9 box only when they matter, the contact fields only with
// the consent to share, the departments of the chosen region, and follows a pending request.
"use strict";

function enhanceForm(form) {
  const distress = () => (form.querySelector('input[name="distress"]:checked') || {}).value;
  const sharing = form.querySelector('input[name="consents.share_with_association"]');
  const region = form.querySelector('select[name="situation.region"]');
  const department = form.querySelector('select[data-filter-by="situation.region"]');
  const update = () => {
    for (const node of document.querySelectorAll("[data-when-distress]")) {
      node.hidden = distress() !== node.dataset.whenDistress;
    }
    for (const box of form.querySelectorAll("[data-show-if-distress]")) {
      const shown = box.dataset.showIfDistress.split(" ").includes(distress());
      box.hidden = !shown;
      if (!shown) box.querySelector("input").checked = false;
    }
    for (const box of form.querySelectorAll("[data-show-if]")) box.hidden = !(sharing && sharing.checked);
    if (region && department) {
      for (const option of department.options) {
        option.hidden = Boolean(option.value) && Boolean(region.value) && option.dataset.region !== region.value;
      }
      if (department.selectedOptions[0] && department.selectedOptions[0].hidden) department.value = "";
    }
  };
  form.addEventListener("change", update);
  update();
}

function followStatus(section) {
  const reference = section.dataset.reference;
  const lang = section.dataset.lang === "en" ? "?lang=en" : "";
  const poll = async () => {
    try {
      const reply = await fetch("/v1/submissions/" + encodeURIComponent(reference) + lang.replace("?lang", "?locale"));
      if (reply.ok) {
        const status = (await reply.json()).status;
        if (status !== section.dataset.status) {
          const page = await fetch("/suivi/" + encodeURIComponent(reference) + lang);
          const fresh = new DOMParser().parseFromString(await page.text(), "text/html").getElementById("orientation");
          if (fresh) { section.replaceWith(fresh); section = fresh; }
        }
      }
    } catch (error) { /* the network is back at the next poll */ }
    if (section.dataset.status === "received") setTimeout(poll, 2000);
  };
  if (section.dataset.status === "received") setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("questionnaire");
  if (form) enhanceForm(form);
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  const section = document.getElementById("orientation");
  if (section) followStatus(section);
});
