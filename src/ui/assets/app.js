// edgesim web view: renders the Edge's events as they arrive (server-sent events from /events).
// Everything from the network is set as text (textContent), never as markup.
"use strict";

const MAX_ITEMS = 500;
let lastSeq = 0;
const dialogs = new Map(); // Call-ID -> { li, messages, events }
let selected = null;
let ladderTimer = null;

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, String(v));
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clock(t) {
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().slice(11, 23);
}

function prepend(listId, li) {
  const list = document.getElementById(listId);
  list.prepend(li);
  while (list.children.length > MAX_ITEMS) list.lastElementChild.remove();
  const empty = document.getElementById(listId + "-empty");
  if (empty) empty.hidden = true;
}

function field(dl, name, value) {
  if (value === null || value === undefined || value === "") return;
  dl.append(el("dt", {}, name), el("dd", {}, value));
}

function renderDecision(d) {
  const status = d.response ? d.response.status : null;
  const li = el("li", {
    class: "decision",
    "data-verdict": d.verdict,
    "data-call-id": d.call_id,
    "data-status": status,
    "data-code": d.ms_diagnostics_code,
  });
  li.append(el("div", { class: "head" },
    el("span", { class: "time" }, clock(d.time)),
    el("span", { class: "badge " + d.verdict }, d.verdict), " ",
    el("b", {}, d.method || "TLS handshake"), " → ",
    el("span", { class: "status" }, status === null ? "no response" : String(status)),
    d.ms_diagnostics_code !== null ? el("span", { class: "code" }, " ms-diagnostics " + d.ms_diagnostics_code) : null,
    d.call_id ? el("span", {}, " · Call-ID ", el("code", { class: "call-id" }, d.call_id)) : null));
  const from = d.peer_cert ? `${d.remote} (${d.peer_cert})` : d.remote;
  li.append(el("div", { class: "meta" }, "from ", from, d.domain ? " · domain " + d.domain : ""));
  const steps = el("ol", { class: "steps" });
  for (const s of d.steps) {
    steps.append(el("li", { class: "step", "data-outcome": s.outcome },
      el("span", { class: "badge " + s.outcome }, s.outcome), " ",
      el("span", { class: "rule" }, s.rule), " — ", el("span", { class: "detail" }, s.detail)));
  }
  steps.append(el("li", { class: "step response" },
    "⇒ ", status === null ? "no SIP response sent" : "response " + status));
  li.append(steps);
  if (d.ms_diagnostics) li.append(el("div", { class: "diag" }, "ms-diagnostics: " + d.ms_diagnostics));
  if (d.result_code) li.append(el("div", { class: "diag" }, "result: " + d.result_code));
  if (d.explanation) li.append(el("p", { class: "explanation" }, d.explanation));
  if (d.fix) li.append(el("p", { class: "fix" }, "Fix: " + d.fix));
  if (d.record || (d.log_data && d.log_data.length)) {
    const det = el("details", {}, el("summary", {}, "Edge record"));
    if (d.record) det.append(el("pre", { class: "record" }, d.record));
    const dl = el("dl", {});
    for (const [k, v] of d.log_data || []) field(dl, k, v);
    det.append(dl);
    li.append(det);
  }
  prepend("decisions", li);
}

function renderConnection(c) {
  const trusted = c.chain.trusted;
  const li = el("li", { class: "connection", "data-conn": c.conn });
  li.append(el("div", { class: "head" },
    el("span", { class: "time" }, clock(c.time)),
    el("b", {}, c.remote), " → ", c.local, " ",
    el("span", { class: "badge " + (trusted ? "trusted" : "untrusted") }, trusted ? "chain trusted" : "chain not trusted"),
    el("span", { class: "closed" })));
  const dl = el("dl", {});
  field(dl, "SNI", c.sni || "(none sent)");
  field(dl, "TLS", c.tls_version);
  field(dl, "suite", c.cipher_suite);
  const x = c.client_cert;
  if (x) {
    field(dl, "subject", x.subject);
    field(dl, "SAN", x.san.length ? x.san.join(", ") : "(none)");
    field(dl, "issuer", x.issuer);
    field(dl, "EKU", x.ekus === null ? "(no EKU extension: any use)" : x.ekus.join(", ") || "(empty)");
    field(dl, "expires", `${x.not_after} (${x.days_left} days left)`);
  } else {
    field(dl, "client certificate", "none presented");
  }
  field(dl, "chain", `${c.chain.text} (${c.chain_len} sent)`);
  li.append(dl);
  prepend("connections", li);
}

function renderClosed(c) {
  const li = document.querySelector(`#connections li[data-conn="${CSS.escape(String(c.conn))}"] .closed`);
  if (li) li.textContent = ` · closed by the ${c.by} at ${clock(c.time)}: ${c.reason}`;
}

function renderDns(q) {
  const li = el("li", { class: "dns", "data-failed": q.failure ? "yes" : "no" },
    el("span", { class: "time" }, clock(q.time)),
    el("b", {}, q.rtype + " " + q.question), " @ ", q.server, ": ",
    q.failure ? el("span", { class: "badge fail" }, q.failure) : q.answers.join(", ") || "(empty)",
    el("span", { class: "time" }, ` ${q.elapsed_ms.toFixed(1)} ms`));
  prepend("dns", li);
}

function exportUrl(ext, callId) {
  return `/api/dialog.${ext}?call_id=${encodeURIComponent(callId)}`;
}

function select(callId) {
  selected = callId;
  for (const [id, d] of dialogs) d.li.setAttribute("aria-selected", id === callId ? "true" : "false");
  document.getElementById("dialog").hidden = false;
  document.getElementById("dialog-call-id").textContent = callId;
  for (const ext of ["txt", "mmd", "json", "pcapng"]) {
    document.getElementById("export-" + ext).href = exportUrl(ext, callId);
  }
  refreshLadder();
}

function refreshLadder() {
  if (selected === null) return;
  const callId = selected;
  const d = dialogs.get(callId);
  document.getElementById("export-pcapng").hidden = !d.messages;
  document.getElementById("export-pcapng-none").hidden = d.messages;
  fetch(exportUrl("txt", callId)).then(r => r.text()).then(text => {
    if (selected === callId) document.getElementById("ladder").textContent = text;
  }).catch(() => {});
}

function touchDialog(callId, isMessage, label) {
  let d = dialogs.get(callId);
  if (!d) {
    const li = el("li", { class: "dialog", "data-call-id": callId }, el("code", {}, callId), el("span", { class: "summary" }));
    li.addEventListener("click", () => select(callId));
    document.getElementById("dialogs").prepend(li);
    d = { li, messages: false, events: 0 };
    dialogs.set(callId, d);
    if (dialogs.size > MAX_ITEMS) {
      const [oldest] = dialogs.keys();
      dialogs.get(oldest).li.remove();
      dialogs.delete(oldest);
    }
  }
  d.events += 1;
  d.messages = d.messages || isMessage;
  if (label) d.li.querySelector(".summary").textContent = " " + label;
  if (selected === null) select(callId);
  else if (selected === callId) {
    clearTimeout(ladderTimer);
    ladderTimer = setTimeout(refreshLadder, 150);
  }
}

function handle(e) {
  if (e.seq <= lastSeq) return;
  lastSeq = e.seq;
  switch (e.kind) {
    case "decision":
      renderDecision(e);
      if (e.call_id) {
        const st = e.response ? e.response.status : "no response";
        touchDialog(e.call_id, false, `${e.method} → ${st} (${e.verdict})`);
      }
      break;
    case "connection": renderConnection(e); break;
    case "connection_closed": renderClosed(e); break;
    case "dns": renderDns(e); break;
    case "message": if (e.call_id) touchDialog(e.call_id, true, null); break;
  }
  document.getElementById("counts").textContent = `${lastSeq} events`;
}

function connect() {
  const status = document.getElementById("status");
  const es = new EventSource("/events");
  es.onopen = () => { status.dataset.state = "live"; status.textContent = "live"; };
  es.onerror = () => { status.dataset.state = "lost"; status.textContent = "reconnecting…"; };
  es.addEventListener("ui", m => {
    try { handle(JSON.parse(m.data)); } catch (err) { console.error(err); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  fetch("/api/info").then(r => r.json()).then(i => {
    document.getElementById("edge").textContent = i.edge;
    document.title = `edgesim ${i.edge}`;
  }).catch(() => {});
  connect();
});
