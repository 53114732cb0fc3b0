// berth ui: the page. Everything it shows comes from berth's API through this server's /api proxy, and is put into
// the document as text (textContent, dataset), never as HTML: target names, images, callers and instances' output
// are data, whatever characters they hold.
"use strict";

const CSRF = document.querySelector('meta[name="berth-csrf"]').content;
const REFRESH_MS = Math.max(500, 1000 * Number(document.querySelector('meta[name="berth-refresh"]').content || 3));
const FINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "ROLLED_BACK"]);  // domain/deployment.py
const TAIL_LINES = 10;
let shownDeployment = null;
let busy = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "data") Object.assign(node.dataset, value);
    else if (name === "onclick") node.addEventListener("click", value);
    else if (name === "style") Object.assign(node.style, value);  // CSSOM: the CSP allows no style attributes
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function segment(value) {
  return encodeURIComponent(value);
}

async function api(method, path, body) {
  const init = {method, headers: {}, credentials: "same-origin", cache: "no-store"};
  if (method !== "GET") {
    init.headers["X-Berth-Csrf"] = CSRF;
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body || {});
  }
  const response = await fetch("/api" + path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new Error(`${response.status} ${error.code || ""}: ${error.message || response.statusText}`);
  }
  return data;
}

function say(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

// What an action (redeploy, rollback, cancel) led to: kept until the next action, unlike the poll's status line.
function notice(text, isError) {
  const line = document.getElementById("notice");
  line.textContent = text;
  line.classList.toggle("error", Boolean(isError));
  line.hidden = false;
}

function short(digest) {
  return digest ? digest.slice(0, 19) + "..." : "unknown";
}

function revision(rev) {
  if (!rev) return "none";
  return rev.digest ? `${rev.image} (${short(rev.digest)})` : rev.image;
}

function when(moment) {
  return moment ? String(moment).slice(0, 19).replace("T", " ") : "";
}

function badge(status) {
  return el("span", {class: `badge ${status}`}, status);
}

function kv(pairs) {
  return el("dl", {class: "kv"}, pairs.filter(Boolean).map(([key, value]) => [el("dt", {}, key), el("dd", {}, value)]));
}

// A target's account and region, when the API says where it lives (a `location`); the role's external id is never
// shown.
function placeOf(target) {
  const where = target.location || (target.spec && target.spec.location);
  if (!where) return null;
  const account = where.account || (where.role_arn ? String(where.role_arn).split(":")[4] : null);
  return `account ${account || "?"}, region ${where.region || "berth's own"}`;
}

function instancesTable(target) {
  const rows = (target.instances || []).map((instance) => el("tr", {data: {instance: instance.instance_id}},
    el("td", {class: "mono"}, instance.instance_id),
    el("td", {class: "mono"}, short(instance.digest)),
    el("td", {}, instance.behind ? el("span", {class: "behind"}, "behind") :
      instance.digest ? el("span", {class: "current"}, "current") : el("span", {class: "muted"}, "unknown")),
    el("td", {class: "mono"}, instance.deployment_id || "")));
  if (!rows.length) return el("p", {class: "muted"}, "no instance known to berth yet");
  return el("table", {class: "instances"},
    el("thead", {}, el("tr", {}, el("th", {}, "instance"), el("th", {}, "digest"), el("th", {}, "state"),
      el("th", {}, "by"))),
    el("tbody", {}, rows));
}

function targetCard(target) {
  const last = target.last_deployment;
  const card = el("article", {class: "card target", data: {target: target.name}},
    el("h3", {}, target.name),
    kv([
      ["image", el("span", {class: "mono image"}, target.current_revision ? target.current_revision.image : "none")],
      ["digest", el("span", {class: "mono digest"}, target.current_revision ? target.current_revision.digest || "unknown"
        : "none")],
      placeOf(target) && ["where", placeOf(target)],
      ["running", target.lock ? el("span", {class: "mono"}, target.lock.deployment_id) : "nothing"],
      ["last", last ? [badge(last.status), " ", el("span", {class: "mono"}, last.deployment_id), ` by ${last.caller}`]
        : "none"],
      ["breaker", target.breaker && target.breaker.open ? el("span", {class: "open"}, "OPEN") : "closed"],
      target.freeze && ["freeze", `${target.freeze.in_force ? "FROZEN" : "ended"} by ${target.freeze.by}: ` +
        target.freeze.reason],
      ["behind", (target.behind || []).length ? `${target.behind.length}: ${target.behind.join(", ")}` : "none"],
    ]),
    instancesTable(target),
    el("div", {class: "actions"},
      el("button", {class: "redeploy", type: "button", onclick: () => act("redeploy", target.name,
        `Redeploy ${target.name}: its current revision (${revision(target.current_revision)}) again?`,
        `/targets/${segment(target.name)}/deployments`)}, "Redeploy"),
      el("button", {class: "rollback danger", type: "button", onclick: () => act("rollback", target.name,
        `Roll ${target.name} back to its previous successful revision?`, `/targets/${segment(target.name)}/rollback`)},
        "Roll back"),
      last ? el("button", {class: "details", type: "button", onclick: () => showDeployment(last.deployment_id)},
        "Last deployment") : null));
  return card;
}

function progressBar(progress) {
  const total = Math.max(progress.total || 0, 1);
  return el("div", {class: "bar", title: `${progress.succeeded} succeeded, ${progress.failed} failed`},
    el("span", {class: "succeeded", style: {width: `${(100 * progress.succeeded) / total}%`}}),
    el("span", {class: "failed", style: {width: `${(100 * progress.failed) / total}%`}}));
}

function progressText(deployment) {
  const p = deployment.progress || {};
  return `${(p.succeeded || 0) + (p.failed || 0)}/${p.total || 0} instances done, ${p.failed || 0} failed, ` +
    `${p.pending || 0} pending`;
}

function waves(rollout) {
  if (!rollout) return null;
  return el("div", {class: "waves"},
    rollout.waves.map((wave, index) => el("span", {class: `wave${index + 1 === rollout.wave ? " reached" : ""}`},
      `wave ${index + 1}: ${wave.length}`)),
    el("span", {class: "muted"}, `${String(rollout.phase).toLowerCase().replace(/_/g, " ")}` +
      (rollout.stop_reason ? `: ${rollout.stop_reason}` : "")));
}

function failed(result) {
  return !(result.status === "Success" && (result.response_code === 0 || result.response_code === null ||
    result.response_code === undefined));
}

function attempts(deployment) {
  return (deployment.attempts || []).map((attempt) => {
    const what = attempt.wave ? `wave ${attempt.wave}, ` : attempt.image ? `rollback to ${attempt.image}, ` : "";
    const instances = Object.entries(attempt.instances || {}).sort(([a], [b]) => (a < b ? -1 : 1));
    return el("div", {class: "attempt"},
      el("p", {}, `attempt ${attempt.number}: ${what}command ${attempt.command_id || "(not sent)"}` +
        (attempt.outcome ? `, ${attempt.outcome}` : "")),
      instances.map(([id, result]) => [
        el("p", {class: "mono"}, `${id} ${result.status}` +
          (result.response_code === null || result.response_code === undefined ? "" : ` exit ${result.response_code}`) +
          (result.step ? ` step ${result.step}` : "")),
        failed(result) && result.output_tail ? el("pre", {class: "tail", data: {instance: id}},
          String(result.output_tail).replace(/\n+$/, "").split("\n").slice(-TAIL_LINES).join("\n")) : null,
      ]));
  });
}

function runningCard(deployment) {
  return el("article", {class: "card running", data: {deployment: deployment.deployment_id}},
    el("h3", {}, `${deployment.target} `, badge(deployment.status)),
    kv([
      ["deployment", el("span", {class: "mono"}, deployment.deployment_id)],
      ["what", revision(deployment.revision)],
      ["who", `${deployment.trigger} by ${deployment.caller}`],
      ["since", when(deployment.created_at)],
      ["progress", el("span", {class: "progress"}, progressText(deployment))],
    ]),
    progressBar(deployment.progress || {}),
    waves(deployment.rollout),
    deployment.message ? el("p", {class: "message"}, deployment.message) : null,
    attempts(deployment),
    el("div", {class: "actions"},
      el("button", {class: "cancel danger", type: "button", onclick: () => act("cancel", deployment.target,
        `Cancel deployment ${deployment.deployment_id} of ${deployment.target}?`,
        `/deployments/${segment(deployment.deployment_id)}/cancel`)}, "Cancel")));
}

function detail(deployment) {
  return el("article", {class: "card detail", data: {deployment: deployment.deployment_id}},
    el("h3", {}, `${deployment.deployment_id} `, badge(deployment.status)),
    kv([
      ["target", deployment.target],
      ["what", revision(deployment.revision)],
      ["before", revision(deployment.previous_revision)],
      ["who", `${deployment.trigger} by ${deployment.caller}`],
      ["when", `${when(deployment.created_at)}, updated ${when(deployment.updated_at)}`],
      ["progress", progressText(deployment)],
      deployment.message && ["message", el("span", {class: "message"}, deployment.message)],
      (deployment.left_behind || []).length && ["behind", deployment.left_behind.join(", ")],
    ]),
    waves(deployment.rollout),
    attempts(deployment),
    (deployment.history || []).map((decision) => el("p", {class: "muted"},
      `${when(decision.at)} ${decision.action}: ${decision.detail}`)));
}

function historyRow(deployment) {
  return el("tr", {class: "pick", data: {deployment: deployment.deployment_id},
    onclick: () => showDeployment(deployment.deployment_id)},
    el("td", {}, when(deployment.created_at)),
    el("td", {}, deployment.target),
    el("td", {}, badge(deployment.status)),
    el("td", {}, deployment.trigger),
    el("td", {class: "mono"}, revision(deployment.revision)),
    el("td", {}, deployment.caller),
    el("td", {class: "mono"}, deployment.deployment_id));
}

async function showDeployment(deploymentId) {
  shownDeployment = deploymentId;
  try {
    const deployment = await api("GET", `/deployments/${segment(deploymentId)}`);
    if (shownDeployment !== deploymentId) return;
    show("detail", deployment, () => detail(deployment));
    const section = document.getElementById("detail-section");
    section.hidden = false;
  } catch (error) {
    say(`deployment ${deploymentId}: ${error.message}`, true);
  }
}

function ask(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-reason").value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve({
      yes: dialog.returnValue === "yes", reason: document.getElementById("confirm-reason").value.trim(),
    }), {once: true});
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function act(kind, target, question, path) {
  const answer = await ask(question);
  if (!answer.yes) return;
  try {
    const deployment = await api("POST", path, answer.reason ? {reason: answer.reason} : {});
    notice(`${kind} of ${target}: deployment ${deployment.deployment_id} ${String(deployment.status).toLowerCase()}`);
    showDeployment(deployment.deployment_id);
    refresh();
  } catch (error) {
    notice(`${kind} of ${target} refused: ${error.message}`, true);
  }
}

// A section is rebuilt only when what the API said about it changed: what a person reads, selects or is about to
// click stays put between polls.
const shown = new Map();
function show(id, data, build) {
  const key = JSON.stringify(data);
  if (shown.get(id) === key) return;
  shown.set(id, key);
  document.getElementById(id).replaceChildren(...[build()].flat());
}

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const list = await api("GET", "/targets");
    const targets = await Promise.all(list.targets.map((t) => api("GET", `/targets/${segment(t.name)}`)));
    const running = await Promise.all(targets.filter((t) => t.lock).map((t) =>
      api("GET", `/deployments/${segment(t.lock.deployment_id)}`).catch(() => null)));
    const history = await api("GET", "/deployments?limit=25");
    const live = running.filter((d) => d && !FINAL.has(d.status));
    show("targets", targets, () => targets.length ? el("div", {class: "cards"}, targets.map(targetCard)) :
      el("p", {class: "muted"}, "no targets registered (PUT /targets/NAME, berth targets put, or a pipeline run)"));
    show("running", live, () => live.length ? el("div", {class: "cards"}, live.map(runningCard)) :
      el("p", {class: "muted"}, "nothing running"));
    show("history-rows", history.deployments, () => history.deployments.map(historyRow));
    if (shownDeployment && !document.getElementById("detail-section").hidden) {
      const open = document.querySelector("#detail .detail");
      if (!open || !FINAL.has(open.querySelector(".badge").textContent)) showDeployment(shownDeployment);
    }
    say(`updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    say(`cannot read berth's API: ${error.message}`, true);
  } finally {
    busy = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
