// Rebond portal: renders the questionnaire from /v1/questionnaire, posts it, follows a request.
"use strict";

const LANG = "fr";
const $ = (id) => document.getElementById(id);
const domId = (qid) => "q-" + qid.replace(/\./g, "-");
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  if (text !== undefined) node.textContent = text;
  return node;
};

let questions = [];

function renderResources(resources) {
  const list = $("resources-list");
  list.replaceChildren();
  for (const r of resources) {
    const item = el("li");
    const strong = el("strong", {}, r.name + " : ");
    item.append(strong, document.createTextNode(r[LANG] + " "));
    if (r.phone) item.append(el("a", { href: "tel:" + r.phone }, "Appeler le " + r.phone));
    else if (r.url) item.append(el("a", { href: r.url, rel: "noopener" }, r.url.replace(/^https?:\/\//, "")));
    list.append(item);
  }
}

function errorSlot(q) {
  return el("p", { id: domId(q.id) + "-error", class: "error", hidden: true });
}

function renderQuestion(q) {
  const id = domId(q.id);
  const required = q.required && !q.show_if;
  const mark = q.required ? " *" : " (facultatif)";
  let box;
  if (q.type === "single" || q.type === "multiple") {
    box = el("fieldset", { id: id, "aria-describedby": id + "-error" });
    box.append(el("legend", {}, q.label[LANG] + mark));
    q.options.forEach((o, i) => {
      const input = el("input", {
        type: q.type === "single" ? "radio" : "checkbox",
        name: q.id, value: o.value, id: id + "-" + i,
      });
      if (q.type === "single" && q.required) input.required = true;
      const label = el("label", { for: id + "-" + i });
      label.append(input, el("span", {}, o.label[LANG]));
      box.append(label);
    });
  } else if (q.type === "boolean") {
    box = el("div", { class: "field", id: id + "-box" });
    const input = el("input", { type: "checkbox", id: id, name: q.id, "aria-describedby": id + "-error" + (q.help ? " " + id + "-help" : "") });
    const label = el("label", { for: id });
    label.append(input, el("span", {}, q.label[LANG]));
    label.style.display = "flex"; label.style.gap = ".5rem";
    box.append(label);
  } else {
    box = el("div", { class: "field", id: id + "-box" });
    box.append(el("label", { for: id }, q.label[LANG] + mark));
    let input;
    if (q.type === "select") {
      input = el("select", { id: id, name: q.id });
      input.append(el("option", { value: "" }, "—"));
      for (const o of q.options) input.append(el("option", { value: o.value, "data-region": o.region }, o.label[LANG]));
    } else if (q.type === "text") {
      input = el("textarea", { id: id, name: q.id, rows: 4, maxlength: q.max_length });
    } else {
      const type = { email: "email", tel: "tel" }[q.type] || "text";
      input = el("input", { type: type, id: id, name: q.id, maxlength: q.max_length,
        autocomplete: { email: "email", tel: "tel" }[q.type] || (q.id === "contact.first_name" ? "given-name" : "off") });
    }
    if (required) input.required = true;
    input.setAttribute("aria-describedby", id + "-error" + (q.help ? " " + id + "-help" : ""));
    box.append(input);
  }
  if (q.help) box.append(el("p", { class: "help", id: id + "-help" }, q.help[LANG]));
  box.append(errorSlot(q));
  if (q.show_if) { box.dataset.showIf = q.show_if; box.hidden = true; }
  return box;
}

function value(q) {
  const id = domId(q.id);
  if (q.type === "single") {
    const checked = document.querySelector(`input[name="${q.id}"]:checked`);
    return checked ? checked.value : null;
  }
  if (q.type === "multiple") {
    return [...document.querySelectorAll(`input[name="${q.id}"]:checked`)].map((i) => i.value);
  }
  if (q.type === "boolean") return $(id).checked;
  const v = $(id).value.trim();
  return v === "" ? null : v;
}

function setPath(obj, path, v) {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) cur = cur[p] = cur[p] || {};
  cur[parts[parts.length - 1]] = v;
}

function collect() {
  const body = { locale: LANG };
  const sharing = $(domId("consents.share_with_association")).checked;
  for (const q of questions) {
    const v = value(q);
    if (q.id.startsWith("contact.") && !sharing) continue;
    if ((q.id === "message" || q.id.startsWith("situation.")) && v === null && !q.required) continue;
    setPath(body, q.id, v);
  }
  return body;
}

function clearErrors() {
  for (const node of document.querySelectorAll(".error")) { node.hidden = true; node.textContent = ""; }
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const node of document.querySelectorAll(".invalid")) node.classList.remove("invalid");
  $("form-error").hidden = true;
}

function questionFor(path) {
  const ids = questions.map((q) => q.id);
  let p = path;
  while (p) {
    if (ids.includes(p)) return p;
    const child = ids.find((id) => id.startsWith(p + ".") && !document.getElementById(domId(id) + "-error").closest("[hidden]"));
    if (child) return child;
    p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "";
  }
  return null;
}

function showErrors(detail) {
  let first = null;
  const general = [];
  for (const e of detail) {
    const qid = questionFor(e.path);
    if (!qid) { general.push(e.msg); continue; }
    const id = domId(qid);
    const slot = $(id + "-error");
    slot.textContent = slot.textContent ? slot.textContent + " " + e.msg : e.msg;
    slot.hidden = false;
    const target = $(id);
    target.setAttribute("aria-invalid", "true");
    (target.closest("fieldset, .field") || target).classList.add("invalid");
    if (!first) first = target.matches("fieldset") ? target.querySelector("input") : target;
  }
  const box = $("form-error");
  box.replaceChildren(el("p", {}, "Certaines réponses sont à corriger" + (general.length ? " : " + general.join(" ") : ".")));
  box.hidden = false;
  (first || box).focus();
}

function toggleConditional() {
  const sharing = $(domId("consents.share_with_association")).checked;
  for (const node of document.querySelectorAll("[data-show-if]")) node.hidden = !sharing;
  const distress = value({ id: "distress", type: "single" });
  $("resources").hidden = distress !== "yes";
  const region = value({ id: "situation.region", type: "select" });
  for (const opt of $(domId("situation.department")).options) {
    if (opt.value) opt.hidden = Boolean(region) && opt.dataset.region !== region;
  }
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const button = $("submit");
  button.disabled = true;
  try {
    const reply = await fetch("/v1/submissions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept-Language": LANG,
        "Idempotency-Key": window.__rebondKey || (window.__rebondKey = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(36).slice(2)) },
      body: JSON.stringify(collect()),
    });
    const data = await reply.json().catch(() => ({}));
    if (reply.status === 202) {
      $("questionnaire").hidden = true;
      $("reference").textContent = data.reference;
      $("status-link").href = "/suivi/" + encodeURIComponent(data.reference);
      if (data.resources) { renderResources(data.resources); $("resources").hidden = false; }
      if (data.erasure_secret) { $("erasure-secret").textContent = data.erasure_secret; $("erasure").hidden = false; }
      $("done").hidden = false;
      $("done-title").focus();
      return;
    }
    if (reply.status === 422) { window.__rebondKey = null; showErrors(data.detail || []); return; }
    if (reply.status === 409) window.__rebondKey = null;
    const box = $("form-error");
    box.replaceChildren(el("p", {}, data.message || "Une erreur est survenue ; réessayez dans un instant."));
    box.hidden = false; box.focus();
  } catch (_) {
    const box = $("form-error");
    box.replaceChildren(el("p", {}, "Connexion impossible ; vos réponses sont conservées sur cette page, réessayez."));
    box.hidden = false; box.focus();
  } finally {
    button.disabled = false;
  }
}

async function startForm() {
  const reply = await fetch("/v1/questionnaire");
  const form = await reply.json();
  questions = form.questions;
  renderResources(form.resources);
  const container = $("questions");
  for (const q of questions) container.append(renderQuestion(q));
  $("questionnaire").addEventListener("change", toggleConditional);
  $("questionnaire").addEventListener("input", () => { window.__rebondKey = null; });
  $("questionnaire").addEventListener("submit", submit);
  $("loading").hidden = true;
  $("questionnaire").hidden = false;
  toggleConditional();
}

async function followStatus(reference) {
  $("loading").hidden = true;
  $("status").hidden = false;
  $("status-reference").textContent = reference;
  let delay = 30;
  const refresh = async () => {
    try {
      const reply = await fetch("/v1/submissions/" + encodeURIComponent(reference), { headers: { "Accept-Language": LANG } });
      const data = await reply.json();
      const list = $("timeline");
      if (reply.status === 404) {
        $("status-note").textContent = "Référence inconnue pour le moment. Vérifiez-la, ou revenez dans quelques minutes.";
        list.replaceChildren();
      } else if (reply.ok) {
        delay = data.refresh_after_s || delay;
        list.replaceChildren(...data.timeline.map((s) => {
          const item = el("li");
          item.append(el("time", { datetime: s.at }, new Date(s.at).toLocaleString("fr-FR")), el("span", {}, s.text));
          if (s.reasons.length) {
            const why = el("ul");
            for (const r of s.reasons) why.append(el("li", {}, r));
            item.append(why);
          }
          return item;
        }));
        $("status-note").textContent = "Cette page se met à jour toute seule.";
      }
    } catch (_) {
      $("status-note").textContent = "Connexion impossible ; nouvel essai bientôt.";
    }
    setTimeout(refresh, delay * 1000);
  };
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  const match = location.pathname.match(/^\/suivi\/([^/]+)$/);
  const ref = match ? decodeURIComponent(match[1]) : new URLSearchParams(location.search).get("ref");
  if (ref) followStatus(ref); else startForm();
});
