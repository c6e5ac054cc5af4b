// The studio page: plain DOM, no build step, no network beyond this studio's own API.
"use strict";

const state = {
  spec: null,          // the spec the form edits (the source of truth on this page)
  format: "yaml",      // the text view's format
  problems: [],
  tools: [],
  connections: [],
  gallery: [],
  run: null,           // the run shown in the playground: {id, live}
  source: null,        // its EventSource
};

// ---------- small helpers ----------
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { "X-Studio-Request": "1" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.detail = data && data.error;
    throw error;
  }
  return data;
}

function notice(text, bad = false) {
  const node = $("#notice");
  node.textContent = text;
  node.style.color = bad ? "#ffb4ab" : "#ffd479";
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
}

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let node = obj;
  keys.slice(0, -1).forEach((key, i) => {
    if (node[key] == null) node[key] = /^\d+$/.test(keys[i + 1]) ? [] : {};
    node = node[key];
  });
  const last = keys[keys.length - 1];
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
}

// ---------- tabs ----------
function showTab(name) {
  $$("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  $$(".tab").forEach((t) => t.classList.toggle("active", t.id === `tab-${name}`));
  if (name === "history") loadHistory();
  if (name === "connections") loadConnections();
}

// ---------- the team form ----------
const TEAM_TYPES = ["round_robin", "selector", "swarm", "planner_coder_reviewer"];
const PRESET_STYLES = ["reviewed", "tested", "sampled"];  // spec.Style
const AGENT_TYPES = ["assistant", "code_executor", "user_proxy"];
const CONDITION_TYPES = ["max_messages", "text_mention", "handoff", "timeout", "token_usage", "and", "or"];

function blankSpec() {
  return { version: 1, models: {}, agents: [], team: { type: "round_robin" },
    termination: { type: "max_messages", max_messages: 10 } };
}

function field(label, path, input) {
  input.dataset.path = path;
  return el("label", { class: "field" }, el("span", { text: label }), input,
    el("div", { class: "problem", "data-for": path }));
}

function textInput(path, { type = "text", placeholder = "", list = false, number = false } = {}) {
  let value = getPath(state.spec, path);
  if (list && Array.isArray(value)) value = value.join(", ");
  const input = el("input", { type, placeholder, value: value ?? "", name: path });
  input.addEventListener("input", () => {
    let v = input.value;
    if (number) v = v === "" ? undefined : Number(v);
    else if (list) v = v.trim() === "" ? undefined : v.split(",").map((s) => s.trim()).filter(Boolean);
    else if (v === "") v = undefined;
    setPath(state.spec, path, v);
    specChanged();
  });
  return input;
}

function area(path, rows = 3) {
  const input = el("textarea", { rows, name: path });
  input.value = getPath(state.spec, path) ?? "";
  input.addEventListener("input", () => {
    setPath(state.spec, path, input.value === "" ? undefined : input.value);
    specChanged();
  });
  return input;
}

function choice(path, options, { blank = false, rerender = false, onPick = null } = {}) {
  const current = getPath(state.spec, path);
  const select = el("select", { name: path },
    blank ? el("option", { value: "", text: "—" }) : null,
    options.map((o) => el("option", { value: o, text: o, selected: o === current })));
  if (current !== undefined && !options.includes(current)) {
    select.prepend(el("option", { value: current, text: `${current} (unknown)`, selected: true }));
  }
  select.addEventListener("change", () => {
    if (onPick) onPick(select.value);
    else setPath(state.spec, path, select.value === "" ? undefined : select.value);
    if (rerender) renderForm();
    specChanged();
  });
  return select;
}

function button(text, onclick, cls = "small") {
  return el("button", { type: "button", class: cls, text, onclick });
}

function renderForm() {
  const spec = state.spec;
  const form = $("#team-form");
  form.replaceChildren();
  const modelKeys = Object.keys(spec.models || {});
  const pcr = spec.team && spec.team.type === "planner_coder_reviewer";

  // Team
  form.append(el("fieldset", { "data-section": "team" }, el("legend", { text: "Team" }),
    el("div", { class: "fields" },
      field("type", "team.type", choice("team.type", TEAM_TYPES, { rerender: true })),
      field("model (selector / preset)", "team.model", choice("team.model", modelKeys, { blank: true })),
      field("max turns", "team.max_turns", textInput("team.max_turns", { type: "number", number: true })),
      pcr ? field("style", "team.style", choice("team.style", PRESET_STYLES, { blank: true })) : null,
      pcr ? field("max rounds", "team.max_rounds", textInput("team.max_rounds", { type: "number", number: true })) : null)));

  // Models
  const models = el("fieldset", { "data-section": "models" }, el("legend", { text: "Models" }));
  for (const key of modelKeys) {
    models.append(el("div", { class: "fields model", "data-model": key },
      el("b", { text: key }),
      field("URL", `models.${key}.base_url`, textInput(`models.${key}.base_url`)),
      field("model", `models.${key}.model`, textInput(`models.${key}.model`)),
      field("key name", `models.${key}.api_key_env`, textInput(`models.${key}.api_key_env`)),
      button("remove", () => { delete spec.models[key]; renderForm(); specChanged(); })));
  }
  const saved = state.connections.filter((c) => c.kind === "model");
  const pick = el("select", { id: "add-model-from" },
    saved.map((c) => el("option", { value: c.name, text: `${c.name} · ${c.model}` })));
  models.append(el("div", { class: "row" }, pick,
    button("Add saved model", () => {
      const c = saved.find((x) => x.name === pick.value);
      if (!c) { notice("save a model endpoint under Connections first", true); return; }
      spec.models = spec.models || {};
      spec.models[c.name] = { base_url: c.base_url, model: c.model, api_key_env: c.has_key ? c.key_name : undefined };
      if (!spec.team.model && (pcr || spec.team.type === "selector")) spec.team.model = c.name;
      renderForm(); specChanged();
    }), el("div", { class: "problem", "data-for": "models" })));
  form.append(models);

  // Executor
  const ex = el("fieldset", { "data-section": "executor" }, el("legend", { text: "Sandbox (code runs here, never on this machine)" }));
  if (spec.executor) {
    ex.append(el("div", { class: "fields" },
      field("service URL", "executor.service_url", textInput("executor.service_url")),
      field("key name", "executor.api_key_env", textInput("executor.api_key_env")),
      field("policy", "executor.policy", textInput("executor.policy")),
      field("wall time (s)", "executor.wall_time_s", textInput("executor.wall_time_s", { type: "number", number: true })),
      field("collect files (globs)", "executor.collect", textInput("executor.collect", { list: true, placeholder: "*.png, *.csv" })),
      button("no sandbox", () => { delete spec.executor; renderForm(); specChanged(); })));
  }
  ex.append(el("div", { class: "row" },
    button("Use saved sandbox", () => {
      const c = state.connections.find((x) => x.kind === "sandbox");
      if (!c) { notice("save the sandbox service under Connections first", true); return; }
      spec.executor = { ...(spec.executor || {}), service_url: c.base_url, api_key_env: c.key_name };
      renderForm(); specChanged();
    }), el("div", { class: "problem", "data-for": "executor" })));
  form.append(ex);

  // Agents
  if (!pcr) {
    const agents = el("fieldset", { "data-section": "agents" }, el("legend", { text: "Agents" }));
    (spec.agents || []).forEach((agent, i) => agents.append(renderAgent(agent, i, modelKeys)));
    const kind = el("select", { id: "add-agent-type" }, AGENT_TYPES.map((t) => el("option", { value: t, text: t })));
    agents.append(el("div", { class: "row" }, kind, button("Add agent", () => {
      spec.agents = spec.agents || [];
      const n = spec.agents.length + 1;
      const agent = { type: kind.value, name: `${kind.value}_${n}` };
      if (kind.value === "assistant") agent.model = modelKeys[0];
      spec.agents.push(agent);
      renderForm(); specChanged();
    }), el("div", { class: "problem", "data-for": "agents" })));
    form.append(agents);
  } else {
    form.append(el("p", { class: "hint", text: "The preset brings its own agents: planner, coder, executor (the sandbox) and reviewer. The reviewer's APPROVE stops the run only when the latest sandbox run exited 0." }));
  }

  // Termination
  const term = el("fieldset", { "data-section": "termination" }, el("legend", { text: pcr ? "Extra termination (OR-ed with the preset's)" : "Termination" }));
  term.append(renderCondition("termination", true));
  form.append(term);
  showProblems();
}

function renderAgent(agent, i, modelKeys) {
  const p = `agents.${i}`;
  const box = el("div", { class: "agent", "data-agent": agent.name || String(i) },
    el("div", { class: "fields" },
      field("type", `${p}.type`, choice(`${p}.type`, AGENT_TYPES, { rerender: true, onPick: (t) => {
        const a = { type: t, name: agent.name };
        if (t === "assistant") a.model = modelKeys[0];
        state.spec.agents[i] = a;
      } })),
      field("name", `${p}.name`, textInput(`${p}.name`)),
      agent.type === "assistant" ? field("model", `${p}.model`, choice(`${p}.model`, modelKeys, { blank: true })) : null,
      field("description", `${p}.description`, textInput(`${p}.description`)),
      button("remove", () => { state.spec.agents.splice(i, 1); renderForm(); specChanged(); })));
  if (agent.type === "assistant") {
    box.append(field("system message", `${p}.system_message`, area(`${p}.system_message`)));
    box.append(el("div", { class: "fields" },
      field("handoffs (names)", `${p}.handoffs`, textInput(`${p}.handoffs`, { list: true })),
      field("max tool iterations", `${p}.max_tool_iterations`, textInput(`${p}.max_tool_iterations`, { type: "number", number: true }))));
    const tools = el("div", { class: "field", "data-path": `${p}.tools` }, el("span", { text: state.tools.length ? "tools (registered with the studio)" : "tools: none registered (start the studio with --tool)" }));
    for (const tool of state.tools) {
      const box2 = el("input", { type: "checkbox", checked: (agent.tools || []).includes(tool) });
      box2.addEventListener("change", () => {
        const list = new Set(agent.tools || []);
        if (box2.checked) list.add(tool); else list.delete(tool);
        agent.tools = list.size ? Array.from(list) : undefined;
        specChanged();
      });
      tools.append(el("label", {}, box2, ` ${tool} `));
    }
    tools.append(el("div", { class: "problem", "data-for": `${p}.tools` }));
    box.append(tools);
  } else if (agent.type === "code_executor") {
    box.append(field("take code from (names)", `${p}.sources`, textInput(`${p}.sources`, { list: true })));
  }
  return box;
}

function defaultCondition(type) {
  switch (type) {
    case "max_messages": return { type, max_messages: 10 };
    case "text_mention": return { type, text: "TERMINATE" };
    case "handoff": return { type, target: "user" };
    case "timeout": return { type, timeout_s: 300 };
    case "token_usage": return { type, max_total_tokens: 20000 };
    default: return { type, conditions: [{ type: "max_messages", max_messages: 10 }, { type: "timeout", timeout_s: 300 }] };
  }
}

function renderCondition(path, root = false) {
  const node = getPath(state.spec, path);
  const legacy = node && !node.type;
  const box = el("div", { class: "cond", "data-cond": path });
  const types = root ? ["", ...CONDITION_TYPES] : CONDITION_TYPES;
  const current = node ? (legacy ? "(first form)" : node.type) : "";
  const select = el("select", { "data-path": `${path}.type`, name: `${path}.type` },
    types.map((t) => el("option", { value: t, text: t || "none", selected: t === current })));
  if (legacy) select.prepend(el("option", { value: "(first form)", text: "fields OR-ed (first form)", selected: true }));
  select.addEventListener("change", () => {
    setPath(state.spec, path, select.value ? defaultCondition(select.value) : undefined);
    renderForm(); specChanged();
  });
  const head = el("div", { class: "fields" }, field(root ? "stop when" : "condition", `${path}.type`, select));
  box.append(head);
  if (!node) return box;
  if (legacy) {
    for (const key of ["max_messages", "text_mention", "handoff_target", "timeout_s", "max_total_tokens"]) {
      const numeric = key !== "text_mention" && key !== "handoff_target";
      head.append(field(key, `${path}.${key}`, textInput(`${path}.${key}`, { type: numeric ? "number" : "text", number: numeric })));
    }
    return box;
  }
  const num = (k, label) => head.append(field(label, `${path}.${k}`, textInput(`${path}.${k}`, { type: "number", number: true })));
  switch (node.type) {
    case "max_messages": num("max_messages", "messages"); break;
    case "timeout": num("timeout_s", "seconds"); break;
    case "token_usage": num("max_total_tokens", "total tokens"); num("max_prompt_tokens", "prompt tokens"); num("max_completion_tokens", "completion tokens"); break;
    case "handoff": head.append(field("target", `${path}.target`, textInput(`${path}.target`))); break;
    case "text_mention":
      head.append(field("text", `${path}.text`, textInput(`${path}.text`)));
      head.append(field("from (names)", `${path}.sources`, textInput(`${path}.sources`, { list: true })));
      break;
    default: {
      (node.conditions || []).forEach((_, i) => {
        const child = renderCondition(`${path}.conditions.${i}`);
        child.querySelector(".fields").append(button("remove", () => {
          node.conditions.splice(i, 1); renderForm(); specChanged();
        }));
        box.append(child);
      });
      const kind = el("select", { "data-add-into": path }, CONDITION_TYPES.map((t) => el("option", { value: t, text: t })));
      box.append(el("div", { class: "row" }, el("span", { class: "status", text: node.type === "and" ? "all of these (&)" : "any of these (|)" }),
        kind, button("add condition", () => {
          node.conditions = node.conditions || [];
          node.conditions.push(defaultCondition(kind.value));
          renderForm(); specChanged();
        }), el("div", { class: "problem", "data-for": `${path}.conditions` })));
    }
  }
  return box;
}

// ---------- form <-> text, validated by the server ----------
let checkTimer = null;
let textTimer = null;

function specChanged() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(() => checkSpec({ spec: state.spec }, true), 250);
}

async function checkSpec(body, fromForm) {
  const result = await api("POST", "/api/specs/check", { ...body, format: state.format });
  state.problems = result.problems;
  if (fromForm || result.spec) {
    const text = state.format === "yaml" ? result.yaml_text : result.json_text;
    if (fromForm || document.activeElement !== $("#spec-text")) $("#spec-text").value = text;
  }
  if (!fromForm && result.spec) {
    state.spec = result.spec;
    renderForm();
  }
  showProblems();
  const status = $("#spec-status");
  status.textContent = result.valid ? "spec is valid" : `${result.problems.length} problem(s)`;
  status.className = `status ${result.valid ? "ok" : "bad"}`;
  return result;
}

function showProblems() {
  $$("#team-form .problem").forEach((p) => { p.textContent = ""; });
  $$("#team-form .invalid").forEach((n) => n.classList.remove("invalid"));
  const list = $("#problems");
  list.replaceChildren();
  for (const problem of state.problems) {
    list.append(el("li", {}, el("code", { text: problem.path || "(spec)" }), ` ${problem.message}`));
    // Next to the field itself, or to the nearest enclosing part of the form that exists.
    const parts = problem.path.split(".");
    for (let n = parts.length; n > 0; n -= 1) {
      const path = parts.slice(0, n).join(".");
      const slot = $(`#team-form .problem[data-for="${CSS.escape(path)}"]`);
      if (slot) {
        slot.textContent = slot.textContent ? `${slot.textContent}; ${problem.message}` : problem.message;
        const input = $(`#team-form [data-path="${CSS.escape(path)}"]`);
        if (input) input.classList.add("invalid");
        break;
      }
    }
  }
}

function loadSpec(spec) {
  state.spec = JSON.parse(JSON.stringify(spec));
  renderForm();
  checkSpec({ spec: state.spec }, true);
}

// Gallery specs point at placeholder endpoints: bind them to this studio's saved ones.
function bindToConnections(spec) {
  const model = state.connections.find((c) => c.kind === "model");
  const sandbox = state.connections.find((c) => c.kind === "sandbox");
  if (model) {
    const keys = Object.keys(spec.models || {});
    for (const key of keys) {
      spec.models[key] = { ...spec.models[key], base_url: model.base_url, model: model.model, api_key_env: model.has_key ? model.key_name : undefined };
    }
  }
  if (sandbox && spec.executor) {
    spec.executor = { ...spec.executor, service_url: sandbox.base_url, api_key_env: sandbox.key_name };
  }
  return spec;
}

async function exportText(format) {
  const result = await api("POST", "/api/specs/check", { spec: state.spec });
  download(`team.${format === "yaml" ? "yaml" : "json"}`, format === "yaml" ? result.yaml_text : result.json_text,
    format === "yaml" ? "application/yaml" : "application/json");
}

async function exportPython() {
  try {
    download("team.py", await api("POST", "/api/specs/python", { spec: state.spec }), "text/x-python");
  } catch (error) {
    notice(`fix the spec first: ${error.message}`, true);
  }
}

// ---------- playground ----------
function codeParts(text) {
  // Fenced blocks become code boxes; the rest stays text (never parsed as HTML).
  const out = [];
  const fence = /```(\w*)\n([\s\S]*?)```/g;
  let last = 0;
  let m;
  while ((m = fence.exec(text)) !== null) {
    if (m.index > last) out.push(el("pre", { text: text.slice(last, m.index).trim() }));
    out.push(el("pre", { class: "code", "data-lang": m[1] || "text", text: m[2] }));
    last = fence.lastIndex;
  }
  if (last < text.length && text.slice(last).trim()) out.push(el("pre", { text: text.slice(last).trim() }));
  return out;
}

function usageText(usage) {
  return usage ? `${usage.prompt_tokens}+${usage.completion_tokens} tokens` : "";
}

function renderEvent(event) {
  const transcript = $("#transcript");
  const meta = (...bits) => el("header", {}, ...bits.filter(Boolean).map((b) => (b instanceof Node ? b : el("span", { text: b }))));
  const time = `+${event.elapsed_s.toFixed(1)} s`;
  if (event.kind === "message") {
    const m = event.message;
    if (m.type === "SelectSpeakerEvent") {
      transcript.append(el("div", { class: "card select", text: `→ next: ${m.content}${m.fallback ? " (fallback)" : ""}` }));
      return;
    }
    let body;
    let cls = `card message type-${m.type}`;
    if (m.type === "CodeGenerationEvent") {
      // The code is usually in the message just above: keep it one click away.
      body = el("details", {}, el("summary", { text: `runs ${m.code_blocks.length} code block(s) by ${m.author}` }),
        m.code_blocks.map((b) => el("pre", { class: "code", "data-lang": b.language, text: b.code })));
    } else if (m.type === "CodeExecutionEvent") {
      cls += m.exit_code === 0 ? " result-ok" : " result-failed";
      body = [el("div", { text: `exit code ${m.exit_code}` }), m.note ? el("div", { class: "status", text: m.note }) : null,
        el("pre", { text: m.output || "(no output)" })];
    } else if (m.type === "HandoffMessage") {
      body = [...codeParts(m.content), el("div", { class: "status", text: `→ handoff to ${m.target}` })];
    } else if (m.type === "ToolCallRequestEvent") {
      body = m.content.map((c) => el("pre", { class: "code", text: `${c.name}(${c.arguments})` }));
    } else if (m.type === "ToolCallExecutionEvent") {
      body = m.content.map((r) => el("pre", { class: r.is_error ? "stderr" : "", text: `${r.name} → ${r.content}` }));
    } else {
      body = codeParts(m.content || "");
    }
    transcript.append(el("div", { class: cls, "data-source": m.source, "data-type": m.type },
      meta(el("b", { text: m.source }), m.type, time, usageText(m.models_usage),
        m.type === "CodeGenerationEvent" ? `code by ${m.author}` : null), body));
  } else if (event.kind === "execution") {
    renderExecution(event, time);
  } else if (event.kind === "execution_cancel") {
    const card = $(`.card.execution[data-id="${CSS.escape(event.id)}"]`);
    if (card) card.append(el("div", { class: "status cancel-note", text: "cancel sent to the sandbox service" }));
  } else if (event.kind === "input_request") {
    renderInputRequest(event);
  } else if (event.kind === "input_answered") {
    const card = $(`.card.input-request[data-request="${CSS.escape(event.request_id)}"]`);
    if (card) { $$("textarea, button", card).forEach((n) => { n.disabled = true; }); card.classList.add("answered"); }
  } else if (event.kind === "end") {
    transcript.append(el("div", { class: `card end ${event.status}`, "data-status": event.status },
      meta(time), el("div", { text: `${event.status}: ${event.stop_reason || event.error || "no reason given"}` })));
    runEnded(event);
  }
  updateSummary(event);
}

function renderExecution(event, time) {
  const run = state.run;
  const live = !["finished", "cancelled", "failed"].includes(event.state);
  const failed = !live && (event.exit_code !== 0 || event.status !== "ok");
  const card = el("div", { class: `card execution ${live ? "run-live" : failed ? "run-failed" : "run-ok"}`,
    "data-id": event.id, "data-state": event.state, "data-exit-code": event.exit_code ?? "" },
  el("header", {}, el("b", { text: "sandbox run" }), el("span", { text: event.id.slice(0, 12) }), el("span", { text: event.language }),
    el("span", { class: "state", text: event.state }), event.status ? el("span", { text: event.status }) : null,
    event.exit_code !== null ? el("span", { text: `exit ${event.exit_code}` }) : null,
    event.wall_time_s != null ? el("span", { text: `${event.wall_time_s.toFixed(2)} s` }) : null, el("span", { text: time })),
  event.stdout ? el("pre", { class: "stdout", text: event.stdout }) : null,
  event.stderr ? el("pre", { class: "stderr", text: event.stderr }) : null,
  event.message ? el("div", { class: "status", text: event.message }) : null,
  event.files.length ? el("ul", { class: "files" }, event.files.map((f) => el("li", {},
    f.id ? el("a", { href: `/api/runs/${run.id}/files/${f.id}`, download: f.path.split("/").pop(), text: f.path }) : el("span", { text: `${f.path}: ${f.error}` }),
    ` (${f.size_bytes} bytes${f.truncated ? ", truncated" : ""})`))) : null);
  const old = $(`.card.execution[data-id="${CSS.escape(event.id)}"]`);
  if (old) { const notes = $$(".cancel-note", old); old.replaceWith(card); notes.forEach((n) => card.append(n)); }
  else $("#transcript").append(card);
}

function renderInputRequest(event) {
  const box = el("textarea", { rows: 2, placeholder: "Your reply to the team" });
  const send = el("button", { class: "primary", text: "Send" });
  const card = el("div", { class: "card input-request", "data-request": event.request_id },
    el("header", {}, el("b", { text: "the team asks you" }), el("span", { text: event.prompt })), box, send);
  send.addEventListener("click", async () => {
    send.disabled = true;
    try {
      await api("POST", `/api/runs/${state.run.id}/input`, { request_id: event.request_id, text: box.value });
    } catch (error) { send.disabled = false; notice(error.message, true); }
  });
  $("#transcript").append(card);
  if (state.run && state.run.live) box.focus();
}

const totals = { prompt: 0, completion: 0, messages: 0, runs: 0 };

function updateSummary(event) {
  if (event.kind === "message" && event.message.models_usage) {
    totals.prompt += event.message.models_usage.prompt_tokens;
    totals.completion += event.message.models_usage.completion_tokens;
  }
  if (event.kind === "message") totals.messages += 1;
  if (event.kind === "execution" && ["finished", "cancelled", "failed"].includes(event.state)) totals.runs += 1;
  $("#run-summary").textContent = `${totals.messages} messages · ${totals.runs} sandbox runs · `
    + `${totals.prompt + totals.completion} tokens (${totals.prompt} prompt, ${totals.completion} completion)`;
}

function follow(runId, live) {
  if (state.source) state.source.close();
  state.run = { id: runId, live };
  Object.assign(totals, { prompt: 0, completion: 0, messages: 0, runs: 0 });
  $("#transcript").replaceChildren();
  $("#run-summary").textContent = "";
  $("#stop").disabled = !live;
  $("#run-status").textContent = live ? "running…" : "replay";
  $("#transcript").dataset.run = runId;
  const source = new EventSource(`/api/runs/${runId}/events`);
  state.source = source;
  const kinds = ["message", "execution", "execution_cancel", "input_request", "input_answered", "end"];
  for (const kind of kinds) {
    source.addEventListener(kind, (e) => renderEvent(JSON.parse(e.data)));
  }
  source.addEventListener("error", () => { if (!state.run || !state.run.live || state.run.ended) source.close(); });
}

function runEnded(event) {
  if (state.source) state.source.close();
  if (state.run) state.run.ended = true;
  $("#stop").disabled = true;
  $("#run").disabled = false;
  const status = $("#run-status");
  status.textContent = event.status;
  status.className = `status ${event.status === "finished" ? "ok" : "bad"}`;
}

async function startRun() {
  const task = $("#task").value.trim();
  if (!task) { notice("write a task first", true); return; }
  $("#run").disabled = true;
  try {
    const run = await api("POST", "/api/runs", { spec: state.spec, task });
    follow(run.id, true);
  } catch (error) {
    $("#run").disabled = false;
    if (error.detail && error.detail.problems) { state.problems = error.detail.problems; showProblems(); }
    notice(error.message, true);
  }
}

async function stopRun() {
  if (!state.run) return;
  $("#stop").disabled = true;
  try { await api("POST", `/api/runs/${state.run.id}/stop`); $("#run-status").textContent = "stopping…"; }
  catch (error) { notice(error.message, true); }
}

// ---------- history ----------
async function loadHistory() {
  const runs = await api("GET", "/api/runs");
  const body = $("#runs tbody");
  body.replaceChildren();
  for (const run of runs) {
    body.append(el("tr", { "data-run": run.id, "data-status": run.status },
      el("td", { text: new Date(run.created_at).toLocaleString() }),
      el("td", { class: "task", title: run.task, text: run.task }),
      el("td", { text: run.spec.team ? run.spec.team.type : "" }),
      el("td", { class: "status-cell", text: run.status }),
      el("td", { text: run.stop_reason || run.error || "" }),
      el("td", {},
        button("Open", () => { showTab("play"); follow(run.id, run.status === "running"); }),
        " ", el("a", { href: `/api/runs/${run.id}/export`, download: `run-${run.id}.json`, text: "Export JSON" }),
        " ", button("Edit spec", () => { loadSpec(run.spec); showTab("build"); }))));
  }
}

// ---------- connections ----------
async function loadConnections() {
  state.connections = await api("GET", "/api/connections");
  const sandbox = state.connections.find((c) => c.kind === "sandbox");
  $("#sandbox-url").value = sandbox ? sandbox.base_url : "";
  $("#sandbox-key").value = "";
  $("#sandbox-key").placeholder = sandbox && sandbox.has_key ? "key saved (type to replace)" : "API key";
  $("#sandbox-state").textContent = sandbox ? (sandbox.has_key ? "saved, key set" : "saved, no key") : "not set";
  const body = $("#models tbody");
  body.replaceChildren();
  for (const c of state.connections.filter((x) => x.kind === "model")) {
    body.append(el("tr", { "data-endpoint": c.name }, el("td", { text: c.name }), el("td", { text: c.base_url }),
      el("td", { text: c.model }), el("td", { text: c.has_key ? "saved" : "none" }),
      el("td", {}, button("Delete", async () => { await api("DELETE", `/api/connections/${c.name}`); loadConnections(); }))));
  }
  if (state.spec) renderForm();
}

async function saveEndpoint(name, body) {
  try {
    await api("PUT", `/api/connections/${encodeURIComponent(name)}`, body);
    notice(`saved ${name}`);
    await loadConnections();
    return true;
  } catch (error) {
    notice(error.message, true);
    return false;
  }
}

// ---------- start ----------
async function start() {
  $$("#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  const [info, gallery] = await Promise.all([api("GET", "/api/info"), api("GET", "/api/gallery")]);
  state.tools = info.tools;
  state.gallery = gallery;
  await loadConnections();
  $("#gallery").replaceChildren(...gallery.map((g) => el("option", { value: g.id, text: g.title, title: g.description })));
  $("#gallery-load").addEventListener("click", () => {
    const entry = state.gallery.find((g) => g.id === $("#gallery").value);
    if (entry) loadSpec(bindToConnections(JSON.parse(JSON.stringify(entry.spec))));
  });
  $("#new-team").addEventListener("click", () => loadSpec(blankSpec()));
  $("#import-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const text = await file.text();
    const format = /\.ya?ml$/i.test(file.name) ? "yaml" : "json";
    const result = await api("POST", "/api/specs/check", { text, format });
    if (result.spec) loadSpec(result.spec);
    else { state.problems = result.problems; showProblems(); }
    e.target.value = "";
  });
  $("#export-json").addEventListener("click", () => exportText("json"));
  $("#export-yaml").addEventListener("click", () => exportText("yaml"));
  $("#export-python").addEventListener("click", exportPython);
  $$('input[name="fmt"]').forEach((r) => r.addEventListener("change", () => {
    state.format = r.value;
    checkSpec({ spec: state.spec }, true);
  }));
  $("#spec-text").addEventListener("input", () => {
    clearTimeout(textTimer);
    textTimer = setTimeout(() => checkSpec({ text: $("#spec-text").value }, false), 400);
  });
  $("#run").addEventListener("click", startRun);
  $("#stop").addEventListener("click", stopRun);
  $("#sandbox-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("#sandbox-key").value;
    saveEndpoint("sandbox", { kind: "sandbox", base_url: $("#sandbox-url").value.trim(), key: key || undefined });
  });
  $("#model-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("#model-key").value;
    const ok = await saveEndpoint($("#model-name").value.trim(), { kind: "model", base_url: $("#model-url").value.trim(),
      model: $("#model-model").value.trim(), key: key || undefined });
    if (ok) $$("#model-form input").forEach((i) => { i.value = ""; });
  });
  loadSpec(blankSpec());
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => { start().catch((error) => notice(error.message, true)); });
