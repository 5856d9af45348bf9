// migsim explorer: the page's controls, runs and results. Plain JS, no build.
// Every request goes to the server that served this page, under this tab's own
// session id (held in memory only, so two tabs never share one).
"use strict";

const state = { sid: null, run: null, polling: null, model: null, scheduleBox: null };
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "for") {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(method, url, body, headers = {}) {
  const options = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (body instanceof ArrayBuffer) options.body = body;
    else {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    return { ok: false, status: 0, data: { errors: [{ field: "", message: "the explorer is not answering: is migsim serve still running?" }] } };
  }
  let data = {};
  try {
    data = await response.json();
  } catch (error) {
    data = { errors: [{ field: "", message: `the server answered ${response.status}` }] };
  }
  return { ok: response.ok, status: response.status, data };
}

// ------------------------------------------------------------------ formatting
function fmtNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "unbounded" : "–";
  if (Number.isInteger(value) || Math.abs(value) >= 100) {
    return Math.round(value).toLocaleString("en-GB");
  }
  return Number(value.toPrecision(3)).toLocaleString("en-GB");
}

function fmtSigned(value) {
  if (value === null || value === undefined) return "undefined";
  const text = fmtNumber(Math.abs(value));
  return value > 0 ? `+${text}` : value < 0 ? `−${text}` : "0";
}

function fmtDate(text) {
  if (!text) return "–";
  const after = text.startsWith("after ");
  const iso = after ? text.slice(6) : text;
  const when = new Date(`${iso}T00:00:00Z`);
  if (Number.isNaN(when.getTime())) return text;
  const shown = when.toLocaleDateString("en-GB", {
    weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC",
  });
  return after ? `not cleared by ${shown}` : shown;
}

function fmtInterval(interval, format) {
  if (!interval || (interval[0] === null && interval[1] === null)) return "";
  // an end the replications are too few to bound is "?", as the report says it
  const [low, high] = interval.map((end) => (end === null ? "?" : format(end)));
  const why = interval.includes(null) ? " (? : too few replications to bound it)" : "";
  return `95% CI ${low} to ${high}${why}`;
}

// ------------------------------------------------------------------ controls
function fieldId(path) {
  return `f-${path.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

function errorSlot(path) {
  return element("p", { className: "error", "data-error-for": path, id: `error-${fieldId(path)}`, role: "alert" });
}

function leverField(lever) {
  const id = fieldId(lever.path);
  const input = element("input", {
    id, type: "number", step: "any", name: lever.path, value: String(lever.value),
    inputMode: "decimal", title: lever.note || "", "data-path": lever.path,
    "data-loaded": String(lever.value), "aria-describedby": `error-${id}`,
  });
  if (lever.kind === "rate") { input.min = "0"; input.max = "1"; }
  if (lever.kind === "int") { input.min = "0"; input.step = "1"; }
  return element("div", { className: "field" },
    element("label", { for: id, text: lever.label }), input, errorSlot(lever.path));
}

function renderControls(model) {
  const controls = $("#controls");
  state.scheduleBox = state.scheduleBox || $("#schedule-box");
  controls.replaceChildren();
  const sections = new Map();
  for (const lever of model.levers) {
    if (!sections.has(lever.section)) sections.set(lever.section, []);
    sections.get(lever.section).push(lever);
  }
  for (const [title, levers] of sections) {
    const fields = element("div", { className: "fields" }, ...levers.map(leverField));
    if (title.startsWith("Outcome rates")) {
      const note = element("p", { className: "note", text: "Shares of attempts. Change one and the other four rescale to sum to 1; change several and they must sum to 1." });
      controls.append(element("details", { className: "box" },
        element("summary", { text: title }), note, fields));
    } else {
      controls.append(element("fieldset", { className: "box" },
        element("legend", { text: title }), fields));
    }
    // the schedule right under the cap: the two say what capacity is planned
    if (title === "Capacity") controls.append(state.scheduleBox);
  }
  $("#gates").replaceChildren(...model.gates.map((gate) => element("option", { value: gate })));
  $("#schedule tbody").replaceChildren();
  model.schedule.forEach((step) => addStep(step));
  numberSteps();
  $("#about").textContent = model.description;
  $("#seed-note").textContent = `Seed ${model.seed}: both runs use it, so they meet the same luck replication by replication. ${model.installations.toLocaleString("en-GB")} installations, ${model.start_date} to ${model.end_date}.`;
}

function addStep(step = { name: "", from: "", daily_cap: "" }) {
  const body = $("#schedule tbody");
  // origin: the loaded step a row came from, so its other fields are kept
  const row = element("tr", { "data-origin": step.origin ?? "" });
  const cell = (key, label, type) => {
    const input = element("input", {
      type, value: String(step[key] ?? ""), "data-step": key, "aria-label": label,
    });
    if (type === "number") { input.min = "0"; input.step = "1"; }
    if (key === "from") input.setAttribute("list", "gates"); // the scenario's gate names
    return element("td", {}, input, element("p", { className: "error", "data-step-error": key, role: "alert" }));
  };
  const remove = element("button", { type: "button", text: "×", className: "small", title: "Remove this step", "aria-label": "Remove step" });
  remove.addEventListener("click", () => { row.remove(); numberSteps(); });
  row.append(cell("name", "step name", "text"), cell("from", "step from (date or gate)", "text"),
    cell("daily_cap", "step daily cap", "number"), element("td", {}, remove));
  body.append(row);
  numberSteps();
}

function numberSteps() {
  const rows = $$("#schedule tbody tr");
  $("#schedule").classList.toggle("empty", rows.length === 0);
  $("#no-steps").hidden = rows.length > 0;
  rows.forEach((row, index) => {
    for (const slot of $$("[data-step-error]", row)) {
      slot.setAttribute("data-error-for", `capacity.schedule.${index}.${slot.dataset.stepError}`);
    }
  });
}

function collect() {
  const values = {};
  for (const input of $$("#controls input[data-path]")) values[input.dataset.path] = input.value;
  const schedule = $$("#schedule tbody tr").map((row) => {
    const step = { origin: row.dataset.origin === "" ? null : Number(row.dataset.origin) };
    for (const input of $$("input[data-step]", row)) step[input.dataset.step] = input.value;
    return step;
  });
  return { values, schedule, replications: $("#replications").value };
}

// ------------------------------------------------------------------ errors
function clearErrors() {
  for (const slot of $$("[data-error-for]")) slot.textContent = "";
  for (const input of $$("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// A number box holding text that is not a number (typed "2500-", or "abc"
// where the browser lets letters in)
// gives the page an empty value: the server can only say "empty", which
// contradicts what the planner sees in the box.
function inWords(message, input) {
  if (!input || !input.validity || !input.validity.badInput) return message;
  return message.replace(/empty: enter a number$/, "not a number: type digits only, such as 2500 or 0.95");
}

function showErrors(errors) {
  for (const { field, message: said } of errors || []) {
    let slot = $$("[data-error-for]").find((node) => node.dataset.errorFor === field);
    if (!slot) slot = $("#error-general");
    const holder = slot.closest(".field, td, section, fieldset");
    const input = holder && holder.querySelector("input, select");
    const message = inWords(said, input);
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    if (input) input.setAttribute("aria-invalid", "true");
    const details = slot.closest("details");
    if (details) details.open = true;
  }
  const first = $$("[data-error-for]").find((node) => node.textContent);
  if (first) first.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------------ scenario
function useModel(data) {
  state.model = data.model;
  state.run = null;
  stopPolling();
  renderControls(data.model);
  $("#replications").value = String(data.replications);
  $("#replications").max = String(data.max_replications);
  $("#result").hidden = true;
  $("#placeholder").hidden = false;
  showProgress(null);
}

async function chooseScenario(key) {
  clearErrors();
  const reply = await api("POST", `/api/session/${state.sid}/scenario`, { key });
  if (!reply.ok) return showErrors(reply.data.errors);
  $("#upload").value = "";
  for (const option of $$("#scenario option[data-upload]")) option.remove();
  useModel(reply.data);
}

async function uploadScenario(file) {
  clearErrors();
  const data = await file.arrayBuffer();
  const reply = await api("POST", `/api/session/${state.sid}/upload`, data, {
    "Content-Type": "application/x-yaml", "X-Filename": encodeURIComponent(file.name),
  });
  if (!reply.ok) return showErrors(reply.data.errors);
  for (const option of $$("#scenario option[data-upload]")) option.remove();
  const option = element("option", { value: "", text: `uploaded: ${file.name}`, "data-upload": "1" });
  $("#scenario").prepend(option);
  $("#scenario").value = "";
  useModel(reply.data);
}

// ------------------------------------------------------------------ runs
function stopPolling() {
  if (state.polling) clearTimeout(state.polling);
  state.polling = null;
}

// The Run bar stays in view (the progress bar may be scrolled away): it says
// how far a run in flight is, and what Run does otherwise.
const RUN_NOTE = "runs the scenario as loaded and yours";

function showProgress(text, brief = text) {
  $("#progress").hidden = text === null;
  if (text !== null) $("#progress-text").textContent = text;
  $("#run-note").textContent = text === null ? RUN_NOTE : brief;
}

async function startRun(event) {
  event.preventDefault();
  clearErrors();
  const reply = await api("POST", `/api/session/${state.sid}/run`, collect());
  // refused (bad input, too many runs): a run in flight goes on, and is shown
  if (!reply.ok) return showErrors(reply.data.errors);
  if (state.run !== null && reply.data.run < state.run) return; // an older press answered late
  stopPolling();
  state.run = reply.data.run;
  $("#results").classList.add("stale");
  $("#placeholder").hidden = true;
  $("#progress-bar").value = 0;
  showProgress("starting…");
  poll(state.run);
}

async function poll(number) {
  if (number !== state.run) return;
  const reply = await api("GET", `/api/session/${state.sid}/status`);
  if (number !== state.run) return; // a newer run replaced this one meanwhile
  if (!reply.ok) {
    showProgress(null);
    $("#results").classList.remove("stale");
    return showErrors(reply.data.errors);
  }
  const status = reply.data;
  if (status.run !== number) return;
  if (status.state === "running") {
    $("#progress-bar").max = Math.max(1, status.total);
    $("#progress-bar").value = status.done;
    // the loaded scenario runs first when it has not run yet: two runs' worth
    const runs = status.total > status.replications ? ` (two runs of ${status.replications})` : "";
    const done = `${status.done} of ${status.total} replications${runs}`;
    const seconds = `${status.elapsed.toFixed(1)} s`;
    showProgress(`${status.stage}: ${done} (${seconds})`, `running: ${done}, ${seconds}`);
    state.polling = setTimeout(() => poll(number), 250);
    return;
  }
  showProgress(null);
  $("#results").classList.remove("stale");
  if (status.state === "failed") return showErrors([{ field: "", message: status.error }]);
  showResult(status);
}

function cell(text, className) {
  return element("td", { text, className });
}

function cellWithInterval(text, interval) {
  const node = element("td", { text });
  if (interval) node.append(element("span", { className: "ci", text: interval }));
  return node;
}

function showResult(status) {
  const result = status.result;
  const built = result.clearance.built;
  const loaded = result.clearance.loaded;
  const base = `/api/session/${state.sid}/run/${status.run}`;
  $("#result-title").textContent = `${result.scenario}: ${result.replications} replications, seed ${result.seed}, ${status.seconds.toFixed(1)} s`;
  for (const key of ["p50", "p90"]) {
    const node = $(`#${key}`);
    node.textContent = fmtDate(built[key]);
    node.dataset.value = built[key];
    const interval = built[`${key}_ci95`];
    const ci = interval ? fmtInterval(interval, (d) => (d ? fmtDate(d) : "?")) : "";
    $(`#${key}-note`).textContent = `${ci}${ci ? "; " : ""}as loaded ${fmtDate(loaded[key])}`;
  }
  $("#headline-note").textContent = `Clearance dates: half of the replications clear by P50, nine in ten by P90. Cleared within the horizon in ${built.cleared_share_text} of replications.`;
  $("#chart").src = `${base}/chart.png`;
  $("#risks tbody").replaceChildren(...result.risks.map((row) => element("tr", {},
    cell(row.risk), cell(fmtNumber(row.p50)), cell(fmtNumber(row.p90)),
    cellWithInterval(fmtNumber(row.mean), fmtInterval(row.mean_ci95, fmtNumber)),
    cell(fmtNumber(row.loaded_p50)))));
  const comparison = result.comparison;
  $("#paired").textContent = `${result.scenario} minus ${comparison.first}, replication by replication: ${comparison.pairs} pairs, both with seed ${comparison.seed} (common random numbers). Negative is earlier or fewer. Intervals are 95%: Student-t for means, a paired bootstrap for quantiles.`;
  $("#comparison tbody").replaceChildren(...comparison.rows.map((row) => element("tr", {},
    cell(row.label), ...["p50", "p90", "mean"].map((k) => {
      const item = row[k];
      return cellWithInterval(fmtSigned(item.diff), fmtInterval(item.ci95, fmtSigned));
    }))));
  const order = comparison.order;
  $("#order").textContent = `In ${order.p_clears_before_first} of pairs ${result.scenario} clears before ${comparison.first}, in ${order.p_clears_same_day} the same day, in ${order.p_clears_after_first} after` + (order.p_neither_clears === "0%" ? "." : `; in ${order.p_neither_clears} neither clears within its horizon.`);
  // the order's shares stay shown; when the pairs are weak, a note says not to read them as the change's
  $("#order-note").textContent = comparison.order_note;
  $("#order-note").hidden = !comparison.order_note;
  $("#pairing").textContent = `Pairing on the clearance day: ${comparison.pairing}.`;
  const changes = result.changes.length ? result.changes : ["nothing: the scenario as loaded (under another name)"];
  $("#changes").replaceChildren(...changes.map((text) => element("li", { text })));
  for (const link of $$("#downloads a")) link.href = `${base}/${link.dataset.kind}`;
  $("#placeholder").hidden = true;
  $("#result").hidden = false;
  // one column (a phone): the answer comes below the whole form, out of sight
  // of the Run button just pressed, so it is brought into view
  const below = $("#result").getBoundingClientRect().top > window.innerHeight;
  if (below && window.matchMedia("(max-width: 900px)").matches) {
    $("#result").scrollIntoView({ block: "start" });
  }
}

// ------------------------------------------------------------------ start
async function init() {
  const reply = await api("POST", "/api/session");
  if (!reply.ok) return showErrors(reply.data.errors);
  state.sid = reply.data.session;
  const select = $("#scenario");
  for (const entry of reply.data.catalogue) {
    select.append(element("option", { value: entry.key, text: `${entry.key}`, title: entry.about }));
  }
  select.value = reply.data.scenario;
  useModel(reply.data);
  select.addEventListener("change", () => select.value && chooseScenario(select.value));
  $("#upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) uploadScenario(file);
  });
  $("#add-step").addEventListener("click", () => addStep());
  $("#levers").addEventListener("submit", startRun);
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", init);
