// rollcraft review: one rollout at a time. Every piece of rollout content is untrusted and is
// rendered with textContent / createElement only (no HTML parsing of content), under a strict CSP.
"use strict";

(function () {
  const TOKEN = new URLSearchParams(window.location.search).get("token") || "";
  const FOLD_CHARS = 1500;
  const FOLD_LINES = 25;
  const state = { items: [], decisions: {}, view: [], pos: -1, current: null, busy: false, total: 0 };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(path, options) {
    const init = Object.assign({ headers: {} }, options || {});
    init.headers["X-Rollcraft-Token"] = TOKEN;
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
    return data;
  }

  // ---- filters and navigation -------------------------------------------------------------
  function filtered() {
    const lo = parseFloat($("reward-min").value);
    const hi = parseFloat($("reward-max").value);
    const type = $("task-type").value;
    const undecided = $("undecided-only").checked;
    return state.items.filter((item) =>
      (isNaN(lo) || item.reward >= lo) && (isNaN(hi) || item.reward <= hi) &&
      (!type || item.task_type === type) && (!undecided || !state.decisions[item.id]));
  }

  function firstUndecided(from) {
    const n = state.view.length;
    for (let k = 0; k < n; k++) {
      const i = (from + k) % n;
      if (!state.decisions[state.view[i].id]) return i;
    }
    return -1;
  }

  function applyFilters(keepId) {
    state.view = filtered();
    let pos = keepId ? state.view.findIndex((item) => item.id === keepId) : -1;
    if (pos < 0) pos = firstUndecided(0);
    if (pos < 0 && state.view.length) pos = 0;
    show(pos);
  }

  async function show(pos) {
    state.pos = pos;
    renderProgress();
    if (pos < 0 || pos >= state.view.length) {
      state.current = null;
      $("meta").replaceChildren();
      $("conversation").replaceChildren(el("p", "empty", "No rollout matches the filters."));
      return;
    }
    const id = state.view[pos].id;
    try {
      const rollout = await api("/api/rollouts/" + encodeURIComponent(id));
      if (state.view[state.pos] && state.view[state.pos].id !== id) return;
      state.current = rollout;
      renderRollout(rollout);
    } catch (error) {
      setStatus("Could not load the rollout: " + error.message, true);
    }
  }

  function move(delta) {
    if (!state.view.length) return;
    const n = state.view.length;
    show((state.pos + delta + n) % n);
  }

  // ---- decisions --------------------------------------------------------------------------
  async function decide(choice) {
    if (!state.current || state.busy) return;
    state.busy = true;
    const id = state.current.id;
    const note = $("note").value;
    try {
      const result = await api("/api/decisions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rollout_id: id, decision: choice, note: note }),
      });
      state.decisions[id] = result.decision;
      setStatus(labelOf(choice) + " saved", false);
      advanceAfter(id);
    } catch (error) {
      setStatus("NOT saved: " + error.message, true);
    } finally {
      state.busy = false;
    }
  }

  function advanceAfter(id) {
    if ($("undecided-only").checked) state.view = filtered();
    const here = state.items.findIndex((item) => item.id === id);
    let from = state.view.findIndex((item) => state.items.indexOf(item) > here);
    if (from < 0) from = 0;
    const next = firstUndecided(from);
    if (next < 0) {
      setStatus("All rollouts in view are reviewed.", false);
      show(Math.min(Math.max(state.view.findIndex((item) => item.id === id), 0), state.view.length - 1));
      return;
    }
    show(next);
  }

  function labelOf(choice) {
    return { accept: "Accepted", reject: "Rejected", skip: "Skipped" }[choice] || choice;
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.className = "status" + (isError ? " error" : "");
  }

  // ---- rendering --------------------------------------------------------------------------
  function renderProgress() {
    const reviewed = state.items.filter((item) => state.decisions[item.id]).length;
    const counts = { accept: 0, reject: 0, skip: 0 };
    for (const item of state.items) {
      const d = state.decisions[item.id];
      if (d) counts[d.decision] = (counts[d.decision] || 0) + 1;
    }
    $("progress").textContent = reviewed + " of " + state.items.length + " reviewed · " + counts.accept +
      " accepted · " + counts.reject + " rejected · " + counts.skip + " skipped";
    const pct = state.items.length ? (100 * reviewed) / state.items.length : 0;
    $("progress-fill").style.width = pct.toFixed(1) + "%";
    const where = state.pos >= 0 ? "#" + (state.pos + 1) + " of " + state.view.length + " shown" : "";
    $("shown").textContent = where;
  }

  function chip(text, className) {
    return el("span", "chip " + (className || ""), text);
  }

  function renderMeta(r) {
    const meta = $("meta");
    const row = el("div", "meta-row");
    row.append(chip("reward " + fmt(r.reward), r.success ? "good" : "bad"));
    row.append(chip(r.success ? "success" : "no success", r.success ? "good" : "bad"));
    row.append(chip(r.task_type, "type"));
    for (const flag of r.flags) row.append(chip(flag, "flag"));
    if (r.decision) row.append(chip("decided: " + r.decision.decision, "decided " + r.decision.decision));
    const facts = el("div", "facts");
    facts.append(el("span", null, "id " + r.id));
    facts.append(el("span", null, r.source + ":" + r.line));
    facts.append(el("span", null, "task " + r.task_key));
    if (r.agent) facts.append(el("span", null, "agent " + r.agent));
    const comps = Object.entries(r.reward_components || {});
    if (comps.length) facts.append(el("span", null, comps.map(([k, v]) => k + " " + fmt(v)).join(" · ")));
    meta.replaceChildren(row, facts);
    if (r.decision && r.decision.note) meta.append(el("div", "prior-note", "note: " + r.decision.note));
  }

  function fmt(x) {
    return typeof x === "number" ? String(Math.round(x * 1000) / 1000) : String(x);
  }

  function renderRollout(r) {
    renderMeta(r);
    $("note").value = r.decision ? r.decision.note : "";
    const names = {};
    for (const m of r.completion.concat(r.prompt)) {
      for (const call of m.tool_calls || []) names[call.id] = (call.function || {}).name;
    }
    const conv = $("conversation");
    conv.replaceChildren();
    if (r.tools && r.tools.length) conv.append(renderTools(r.tools));
    r.prompt.forEach((m) => conv.append(renderMessage(m, names, true)));
    if (r.prompt.length) conv.append(el("div", "divider", "agent output"));
    r.completion.forEach((m) => conv.append(renderMessage(m, names, false)));
    if (!r.completion.length) conv.append(el("p", "empty", "(the agent produced nothing)"));
    window.scrollTo(0, 0);
  }

  function renderTools(tools) {
    const box = el("details", "tools");
    box.append(el("summary", null, tools.length + " tool" + (tools.length === 1 ? "" : "s") + " available"));
    for (const tool of tools) {
      const fn = tool.function || tool;
      const item = el("div", "tool");
      item.append(el("span", "fn", fn.name || "(unnamed)"));
      if (fn.description) item.append(el("span", "desc", " " + fn.description));
      box.append(item);
    }
    return box;
  }

  function renderMessage(m, names, inPrompt) {
    const role = m.role || "unknown";
    const card = el("article", "msg role-" + role.replace(/[^a-z]/g, ""));
    const head = el("div", "msg-head");
    const title = { system: "System", user: "User", assistant: "Assistant", tool: "Tool result" }[role] || role;
    head.append(el("span", "role", title));
    if (role === "tool") {
      head.append(el("span", "fn", names[m.tool_call_id] || "?"));
      if (m.tool_call_id) head.append(el("span", "call-id", m.tool_call_id));
    }
    card.append(head);
    if (m.reasoning_content) card.append(folded("Reasoning", m.reasoning_content, "reasoning", true));
    const text = typeof m.content === "string" ? m.content : m.content == null ? "" : JSON.stringify(m.content);
    if (text) {
      const long = text.length > FOLD_CHARS || text.split("\n").length > FOLD_LINES;
      const fold = long && (role === "tool" || role === "system" || text.length > 20000);
      card.append(fold ? folded(role === "tool" ? "Output" : "Text", text, "text", true) : block(text));
    } else if (!(m.tool_calls || []).length) {
      card.append(el("div", "muted", "(no text)"));
    }
    for (const call of m.tool_calls || []) card.append(renderCall(call));
    return card;
  }

  function block(text) {
    return el("div", "text", text);
  }

  function folded(label, text, className, closed) {
    const box = el("details", "fold " + className);
    if (!closed) box.open = true;
    const lines = text.split("\n").length;
    const summary = el("summary", null, label + " — " + text.length.toLocaleString() + " characters, " +
      lines.toLocaleString() + " line" + (lines === 1 ? "" : "s"));
    const preview = el("span", "preview", " " + text.slice(0, 160).replace(/\s+/g, " "));
    summary.append(preview);
    box.append(summary, block(text));
    return box;
  }

  function renderCall(call) {
    const fn = call.function || {};
    const box = el("div", "call");
    const head = el("div", "call-head");
    head.append(el("span", "call-label", "calls"), el("span", "fn", fn.name || "(unnamed)"));
    if (call.id) head.append(el("span", "call-id", call.id));
    box.append(head);
    box.append(el("pre", "args", prettyArgs(fn.arguments)));
    return box;
  }

  function prettyArgs(args) {
    if (typeof args !== "string") return JSON.stringify(args, null, 2);
    try {
      return JSON.stringify(JSON.parse(args), null, 2);
    } catch (e) {
      return args;
    }
  }

  // ---- keyboard ---------------------------------------------------------------------------
  function onKey(event) {
    const target = event.target;
    const typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" ||
      target.tagName === "SELECT");
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      a: () => decide("accept"), r: () => decide("reject"), s: () => decide("skip"),
      j: () => move(1), ArrowRight: () => move(1), k: () => move(-1), ArrowLeft: () => move(-1),
      n: () => $("note").focus(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  // ---- start ------------------------------------------------------------------------------
  async function start() {
    document.addEventListener("keydown", onKey);
    $("accept").addEventListener("click", () => decide("accept"));
    $("reject").addEventListener("click", () => decide("reject"));
    $("skip").addEventListener("click", () => decide("skip"));
    $("prev").addEventListener("click", () => move(-1));
    $("next").addEventListener("click", () => move(1));
    for (const id of ["reward-min", "reward-max", "task-type", "undecided-only"]) {
      $(id).addEventListener("change", () => applyFilters(state.current && state.current.id));
    }
    try {
      const data = await api("/api/rollouts");
      state.items = data.items;
      state.decisions = data.decisions;
      $("sample").textContent = data.sample + " → " + data.decisions_file;
      const types = Array.from(new Set(data.items.map((item) => item.task_type))).sort();
      for (const type of types) $("task-type").append(new Option(type, type));
      const left = Object.values(data.quarantined).reduce((a, b) => a + b, 0);
      const notes = [];
      if (left) notes.push(left + " quarantined line" + (left === 1 ? "" : "s") + " not shown");
      if (data.duplicates) notes.push(data.duplicates + " duplicate" + (data.duplicates === 1 ? "" : "s"));
      if (data.torn_decision_lines) notes.push("a torn last line of the decisions file was skipped");
      $("notice").textContent = notes.join(" · ");
      applyFilters(null);
      document.body.dataset.ready = "1";
    } catch (error) {
      $("conversation").replaceChildren(el("p", "empty", "Could not load the sample: " + error.message));
    }
  }

  start();
})();
