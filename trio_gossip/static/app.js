// The page of one trio_gossip peer: what it knows, live. It uses only the
// JSON API of docs/api.md and builds every element with textContent, never
// with HTML: file names are untrusted.
"use strict";

const state = { q: "", peer: "", sort: "name", order: "asc", page: 1, pages: 1 };
const fresh = new Map(); // file name -> when it was last added or changed (ms)
const FRESH_MS = 5000;
let filesSeq = 0; // answers to older requests are dropped
let recent = []; // [{event, at}] newest first
let peersAt = 0; // when the peers list arrived (performance.now())
let peers = [];

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- formatting ------------------------------------------------------------------

const number = new Intl.NumberFormat();

function bytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 1.5) return "just now";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function pad(n) { return String(n).padStart(2, "0"); }

function clock(mtimeNs) {
  const d = new Date(mtimeNs / 1e6); // ms; JSON numbers lose the nanoseconds anyway
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Characters that would hide or rearrange a name (controls, bidi overrides,
// zero-width ones) are shown as what they are.
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;
const NAMED = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function nameNode(name) {
  const bdi = el("bdi"); // an RTL name stays inside its cell's own direction
  let plain = "";
  for (const ch of name) {
    if (!HIDDEN.test(ch)) { plain += ch; continue; }
    if (plain) { bdi.append(plain); plain = ""; }
    const code = "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    const mark = el("span", "ctl", NAMED[ch] || code);
    mark.title = `a ${code} character in the name`;
    bdi.append(mark);
  }
  if (plain) bdi.append(plain);
  return bdi;
}

// -- the API -------------------------------------------------------------------------

async function api(path) {
  const response = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function filesQuery() {
  const params = new URLSearchParams({ sort: state.sort, order: state.order, page: state.page });
  if (state.q) params.set("q", state.q);
  if (state.peer) params.set("peer", state.peer);
  return `/api/files?${params}`;
}

// -- peers ----------------------------------------------------------------------------

function renderPeers(list) {
  peers = list;
  peersAt = performance.now();
  const body = el("tbody");
  for (const p of list) {
    const row = el("tr");
    row.dataset.peer = p.name;
    if (p.status !== "alive") row.classList.add("gone");
    if (p.name === state.peer) row.classList.add("chosen");
    const name = el("td");
    name.append(el("span", "peer-name", p.name));
    if (p.self) name.append(el("span", "you", "this peer"));
    const status = el("td");
    const badge = el("span", `status ${p.status}`, p.status);
    if (p.status_ago !== undefined && p.status_ago !== null) badge.title = `since ${ago(p.status_ago)}`;
    status.append(badge);
    const known = p.status !== "unknown";
    row.append(
      name,
      status,
      el("td", "num", known ? number.format(p.version) : ""),
      el("td", "num", known ? number.format(p.files) : ""),
      el("td", "num", known ? bytes(p.bytes) : ""),
      el("td", "num age", known ? ago(p.heard_ago) : "never"),
      el("td", "num age", known ? ago(p.changed_ago) : ""),
    );
    row.addEventListener("click", () => chooseHolder(p.name === state.peer ? "" : p.name));
    body.append(row);
  }
  $("peers").tBodies[0].replaceWith(body);
  const alive = list.filter((p) => p.status === "alive").length;
  $("peer-count").textContent = `${alive} of ${list.length} alive`;
}

// Ages move on between two lists from the peer.
function tickAges() {
  const elapsed = (performance.now() - peersAt) / 1000;
  const rows = $("peers").tBodies[0].rows;
  peers.forEach((p, i) => {
    if (p.status === "unknown" || !rows[i]) return;
    rows[i].cells[5].textContent = ago(p.heard_ago + elapsed);
    rows[i].cells[6].textContent = ago(p.changed_ago === null ? null : p.changed_ago + elapsed);
  });
  for (const node of document.querySelectorAll("#recent time")) {
    node.textContent = ago((performance.now() - Number(node.dataset.at)) / 1000);
  }
}

// -- what just changed -------------------------------------------------------

function describe(event) {
  const parts = [];
  for (const [key, sign] of [["added", "+"], ["changed", "~"], ["removed", "−"]]) {
    const count = event[`${key}_count`] || 0;
    if (count) parts.push(`${sign}${number.format(count)}`);
  }
  return parts.join(" ");
}

function renderRecent() {
  const list = el("ol");
  list.id = "recent";
  if (!recent.length) list.append(el("li", "empty", "Nothing yet: changes appear here as they happen."));
  for (const { event, at } of recent) {
    const item = el("li");
    const what = el("span", "what");
    what.append(el("b", "", event.origin), " " + describe(event));
    const when = el("time", "", ago((performance.now() - at) / 1000));
    when.dataset.at = String(at);
    item.append(el("span", `kind ${event.event}`, event.event), what, when);
    const names = (event.added || []).concat(event.changed || [], event.removed || []);
    if (names.length) {
      const line = el("span", "names");
      names.slice(0, 3).forEach((n, i) => {
        if (i) line.append(", ");
        line.append(nameNode(n));
      });
      const total = (event.added_count || 0) + (event.changed_count || 0) + (event.removed_count || 0);
      if (total > 3) line.append(` and ${number.format(total - 3)} more`);
      item.append(line);
    }
    list.append(item);
  }
  $("recent").replaceWith(list);
}

function remember(event, at) {
  recent.unshift({ event, at });
  recent = recent.slice(0, 50);
  for (const n of (event.added || []).concat(event.changed || [])) fresh.set(n, at);
}

// -- files -------------------------------------------------------------------------

function renderFiles(answer) {
  const body = el("tbody");
  const now = performance.now();
  for (const f of answer.files) {
    const row = el("tr");
    if (now - (fresh.get(f.name) || -Infinity) < FRESH_MS) row.classList.add("fresh");
    const name = el("td", "name");
    name.append(nameNode(f.name));
    const size = el("td", "num", bytes(f.size));
    size.title = `${number.format(f.size)} bytes`;
    const held = el("td");
    const stale = new Set(f.stale);
    for (const h of f.holders) {
      const chip = el("span", stale.has(h) ? "chip stale" : "chip", h);
      chip.title = stale.has(h) ? `${h} holds another copy (older, or another size)` : `held by ${h}`;
      chip.addEventListener("click", () => chooseHolder(h));
      held.append(chip);
    }
    row.append(name, size, el("td", "time", clock(f.mtime_ns)), held);
    body.append(row);
  }
  if (!answer.files.length) {
    const row = el("tr");
    const cell = el("td", "empty", answer.names ? "No file matches." : "No files in the cluster yet.");
    cell.colSpan = 4;
    row.append(cell);
    body.append(row);
  }
  $("files").tBodies[0].replaceWith(body);
  state.pages = answer.pages;
  state.page = answer.page;
  const first = answer.total ? (answer.page - 1) * answer.per_page + 1 : 0;
  const last = Math.min(answer.total, answer.page * answer.per_page);
  $("page-info").textContent = `${number.format(first)}–${number.format(last)} of ${number.format(answer.total)}`;
  $("prev").disabled = answer.page <= 1;
  $("next").disabled = answer.page >= answer.pages;
  const filtered = answer.q || answer.peer;
  $("file-count").textContent = filtered
    ? `${number.format(answer.total)} of ${number.format(answer.names)} names`
    : `${number.format(answer.names)} names`;
  for (const th of document.querySelectorAll("#files th[data-sort]")) {
    if (th.dataset.sort === state.sort) th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
  performance.mark("trio-gossip:files"); // when the table changed: for bench/web.py
}

async function loadFiles() {
  const seq = ++filesSeq;
  const answer = await api(filesQuery());
  if (seq === filesSeq) renderFiles(answer);
}

async function loadView() {
  const view = await api("/api/view");
  document.title = `${view.peer} · trio_gossip`;
  $("me").textContent = view.peer;
  $("me").title = `${view.address}, folder ${view.folder}`;
  renderPeers(view.peers);
  const now = performance.now();
  recent = view.recent.map((event) => ({ event, at: now - event.ago * 1000 }));
  renderRecent();
  renderSummary(view);
}

function renderSummary(view) {
  const summary = $("summary");
  summary.textContent = "";
  const alive = view.peers.filter((p) => p.status === "alive").length;
  summary.append(
    el("b", "", number.format(view.names)), " file names, ",
    el("b", "", number.format(view.copies)), " copies across ",
    el("b", "", String(alive)), ` of ${view.peers.length} peers alive`,
  );
}

function refreshAll() {
  loadView().catch(showOffline);
  loadFiles().catch(showOffline);
}

// Changes come in bursts (a scan, a transfer): fetch once per burst.
let pending = null;
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refreshAll(); }, 150);
}

// -- the live stream --------------------------------------------------------------

function setLive(kind, text) {
  $("live").dataset.state = kind;
  $("live-text").textContent = text;
}

function showOffline() { setLive("offline", "peer unreachable"); }

function connect() {
  const stream = new EventSource("/api/events");
  stream.addEventListener("ready", () => { setLive("live", "live"); refreshAll(); });
  stream.addEventListener("peers", (m) => renderPeers(JSON.parse(m.data)));
  stream.addEventListener("change", (m) => {
    const event = JSON.parse(m.data);
    remember(event, performance.now() - event.ago * 1000);
    renderRecent();
    soon();
  });
  stream.addEventListener("resync", soon);
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED) {
      showOffline();
      setTimeout(connect, 5000);
    } else {
      setLive("connecting", "reconnecting…");
    }
  });
}

// -- the controls -------------------------------------------------------------------

function chooseHolder(name) {
  state.peer = name;
  state.page = 1;
  $("holder-filter").hidden = !name;
  $("holder-name").textContent = name;
  for (const row of $("peers").tBodies[0].rows) row.classList.toggle("chosen", row.dataset.peer === name);
  loadFiles().catch(showOffline);
}

function setup() {
  let typing = null;
  $("search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.q = e.target.value.trim();
      state.page = 1;
      loadFiles().catch(showOffline);
    }, 120);
  });
  for (const th of document.querySelectorAll("#files th[data-sort]")) {
    th.addEventListener("click", () => {
      const sort = th.dataset.sort;
      if (state.sort === sort) state.order = state.order === "asc" ? "desc" : "asc";
      else { state.sort = sort; state.order = sort === "name" ? "asc" : "desc"; }
      state.page = 1;
      loadFiles().catch(showOffline);
    });
  }
  $("prev").addEventListener("click", () => { state.page -= 1; loadFiles().catch(showOffline); });
  $("next").addEventListener("click", () => { state.page += 1; loadFiles().catch(showOffline); });
  $("holder-clear").addEventListener("click", () => chooseHolder(""));
  setInterval(tickAges, 1000);
  refreshAll();
  connect();
}

setup();
