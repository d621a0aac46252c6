// optionflow dashboard: signals (live over /ws), expandable cards, chain view, health.
// Plain JavaScript, no build step: the file is compiled into the binary as is.
"use strict";

const $ = (id) => document.getElementById(id);
const signals = new Map(); // signal_id -> summary
const expanded = new Set();
let lastHealth = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
const et = (micros) =>
  new Date(micros / 1000).toLocaleString("en-US", {
    timeZone: "America/New_York", hour12: false, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }) + " ET";

function filters() {
  return {
    underlying: $("f-underlying").value,
    sector: $("f-sector").value,
    direction: $("f-direction").value,
    minScore: parseFloat($("f-min-score").value) || 0,
    factor: $("f-factor").value,
  };
}

function keeps(s, f) {
  return (!f.underlying || s.underlying === f.underlying) &&
    (!f.sector || s.sector === f.sector) &&
    (!f.direction || s.direction === f.direction) &&
    s.composite >= f.minScore &&
    (!f.factor || s.voted.includes(f.factor));
}

function addOption(select, value) {
  if (!value || [...select.options].some((o) => o.value === value)) return;
  select.append(el("option", { value }, value));
}

function statusBadge(s) {
  const title = s.rule ? `${s.rule}: ${s.reason || ""}` : "waiting for the risk gate";
  return el("span", { class: `badge ${s.status}`, title, "data-status": s.status }, s.status);
}

function cardNode(s, isNew) {
  const card = el("div", {
    class: "card" + (isNew ? " new" : ""),
    "data-signal-id": s.signal_id,
    "data-underlying": s.underlying,
  },
    el("div", { class: "top" },
      el("span", { class: "u" }, s.underlying),
      el("span", { class: `badge ${s.direction}` }, s.direction),
      el("span", { class: "score" }, `${fmt(s.composite, 0)}/100`),
      statusBadge(s),
      el("span", { class: "when" }, et(s.event_time))),
    el("div", { class: "headline" }, s.headline || `${s.agreeing} factors agree`));
  card.addEventListener("click", (ev) => {
    if (ev.target.closest(".detail")) return;
    if (expanded.has(s.signal_id)) expanded.delete(s.signal_id);
    else expanded.add(s.signal_id);
    render();
  });
  if (expanded.has(s.signal_id)) {
    const detail = el("div", { class: "detail" }, "loading…");
    card.append(detail);
    loadDetail(s.signal_id, detail);
  }
  return card;
}

async function loadDetail(id, into) {
  const r = await fetch(`/api/signals/${encodeURIComponent(id)}`);
  if (!r.ok) { into.textContent = "no longer kept"; return; }
  const { card, deliveries } = await r.json();
  into.textContent = "";
  const ex = card.explanation;
  if (ex && ex.html) {
    // The explain stage's HTML escapes everything that came from data.
    const box = el("div", { class: "narrative" });
    box.innerHTML = ex.html;
    into.append(box);
  } else if (ex) {
    into.append(el("pre", { class: "narrative" }, ex.text));
  }
  const factors = el("table", { class: "factors" },
    el("tr", {}, ...["factor", "score", "z", "p", "direction", "voted", "what it saw"].map((h) => el("th", {}, h))));
  for (const f of card.signal.factors) {
    factors.append(el("tr", {},
      el("td", { style: "text-align:left" }, f.factor), el("td", {}, fmt(f.score, 0)),
      el("td", {}, fmt(f.zscore, 1)), el("td", {}, Number(f.p_value).toExponential(1)),
      el("td", {}, f.direction), el("td", {}, f.voted ? "yes" : ""),
      el("td", { style: "text-align:left" }, f.detail)));
  }
  into.append(el("h3", {}, "Factors"), factors);
  const d = card.decision;
  into.append(el("h3", {}, "Risk decision"),
    d ? el("p", {}, el("span", { class: `badge ${d.approved ? "approved" : "rejected"}` }, d.rule), " ", d.reason)
      : el("p", {}, "pending"));
  const delivery = el("ul", { class: "delivery" });
  for (const a of card.alerts) {
    const outcome = deliveries.find((e) => e.alert_id === a.event_id && e.channel === a.channel);
    const state = a.channel === "file" ? "written" : outcome ? outcome.status : "queued";
    delivery.append(el("li", {}, `${a.channel} (route ${a.route}): `,
      el("span", { class: `badge ${state}` }, state),
      outcome && outcome.error ? ` ${outcome.error}` : ""));
  }
  for (const sup of card.suppressed) {
    delivery.append(el("li", {}, `route ${sup.symbol}: `,
      el("span", { class: "badge suppressed" }, sup.reason_code), ` ${sup.reason}`));
  }
  if (!delivery.children.length) delivery.append(el("li", {}, "no alert"));
  into.append(el("h3", {}, "Delivery"), delivery);
}

let fresh = new Set();
function render() {
  const f = filters();
  const list = [...signals.values()].filter((s) => keeps(s, f))
    .sort((a, b) => b.event_time - a.event_time || (a.signal_id < b.signal_id ? -1 : 1));
  const box = $("signals");
  box.textContent = "";
  for (const s of list.slice(0, 300)) box.append(cardNode(s, fresh.has(s.signal_id)));
  fresh = new Set();
  $("signal-count").textContent = list.length;
}

function upsert(summary, isNew) {
  signals.set(summary.signal_id, summary);
  addOption($("f-underlying"), summary.underlying);
  addOption($("f-sector"), summary.sector);
  addOption($("chain-underlying"), summary.underlying);
  if (isNew) fresh.add(summary.signal_id);
}

async function loadSignals() {
  const r = await fetch("/api/signals?limit=2000");
  for (const s of await r.json()) upsert(s, false);
  render();
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => { $("feed-state").textContent = "feed: live"; loadSignals(); };
  ws.onclose = () => {
    $("feed-state").textContent = "feed: reconnecting";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "resync") { loadSignals(); return; }
    if (msg.signal) {
      upsert(msg.signal, msg.type === "signal");
      render();
    }
  };
}

async function loadHealth() {
  try {
    const h = await (await fetch("/api/health")).json();
    const s = h.status;
    if (!s) { $("health").textContent = "no session running"; return; }
    const now = performance.now();
    let rate = "";
    if (lastHealth) {
      const qps = (s.quotes - lastHealth.quotes) / ((now - lastHealth.at) / 1000);
      rate = ` (${fmt(qps, 0)}/s)`;
    }
    lastHealth = { quotes: s.quotes, at: now };
    const failed = h.deliveries.failed;
    $("health").textContent =
      `${s.event_time ? et(s.event_time) : "–"} · ${s.quotes} quotes${rate} · ${s.signals} signals · ` +
      `${s.alerts} alerts · ${s.rejected} rejected · ${s.checkpoints} checkpoints · ` +
      `${h.deliveries.delivered} delivered, ${failed} failed deliveries`;
    $("health").dataset.failed = failed;
  } catch (e) {
    $("health").textContent = "pipeline unreachable";
  }
}

async function loadUnderlyings() {
  const list = await (await fetch("/api/underlyings")).json();
  for (const u of list) {
    addOption($("chain-underlying"), u.underlying);
    addOption($("f-underlying"), u.underlying);
    if (u.sector) addOption($("f-sector"), u.sector);
  }
  if (!$("chain-underlying").value && list.length) {
    $("chain-underlying").value = list[0].underlying;
    loadChain();
  }
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function drawGex(view) {
  const chart = $("gex-chart");
  chart.textContent = "";
  const bars = view.gex;
  if (!bars.length) return;
  const W = 600, H = 200, mid = H / 2;
  const lo = bars[0].strike, hi = bars[bars.length - 1].strike;
  const x = (k) => 20 + ((k - lo) / Math.max(hi - lo, 1e-9)) * (W - 40);
  const peak = Math.max(...bars.map((b) => Math.max(Math.abs(b.call), Math.abs(b.put)))) || 1;
  const w = Math.max(2, (W - 40) / bars.length - 2);
  chart.append(svg("line", { x1: 0, x2: W, y1: mid, y2: mid, stroke: "#2a3440" }));
  for (const b of bars) {
    for (const [g, color] of [[b.call, "#3fb96f"], [b.put, "#e5534b"]]) {
      const h = (Math.abs(g) / peak) * (mid - 10);
      chart.append(svg("rect", {
        x: x(b.strike) - w / 2, width: w, y: g >= 0 ? mid - h : mid, height: h, fill: color,
      }));
    }
  }
  let labels = 0; // each label on its own line, so nearby marks stay readable
  const mark = (k, label, color) => {
    if (k === null || k === undefined || k < lo || k > hi) return;
    chart.append(svg("line", { x1: x(k), x2: x(k), y1: 0, y2: H, stroke: color, "stroke-dasharray": "4 3" }));
    const t = svg("text", { x: x(k) + 3, y: 12 + 13 * labels++, fill: color, "font-size": 11 });
    t.textContent = label;
    chart.append(t);
  };
  mark(view.spot, `spot ${fmt(view.spot)}`, "#d8dee6");
  if (view.call_wall) mark(view.call_wall[0], `call wall ${view.call_wall[0]}`, "#3fb96f");
  if (view.put_wall) mark(view.put_wall[0], `put wall ${view.put_wall[0]}`, "#e5534b");
  mark(view.gamma_flip, `flip ${fmt(view.gamma_flip)}`, "#e3b341");
}

function drawSmile(exp) {
  const chart = $("smile-chart");
  chart.textContent = "";
  if (!exp || exp.smile.length < 2) return;
  const W = 600, H = 160;
  const ks = exp.smile.map((p) => p[0]), ivs = exp.smile.map((p) => p[1]);
  const [k0, k1] = [Math.min(...ks), Math.max(...ks)];
  const [v0, v1] = [Math.min(...ivs), Math.max(...ivs)];
  const x = (k) => 20 + ((k - k0) / Math.max(k1 - k0, 1e-9)) * (W - 40);
  const y = (v) => H - 15 - ((v - v0) / Math.max(v1 - v0, 1e-9)) * (H - 35);
  chart.append(svg("polyline", {
    points: exp.smile.map((p) => `${x(p[0])},${y(p[1])}`).join(" "),
    fill: "none", stroke: "#c792ea", "stroke-width": 2,
  }));
  const t = svg("text", { x: 24, y: 14, fill: "#8593a3", "font-size": 11 });
  t.textContent = `smile ${exp.expiry}: IV ${fmt(v0 * 100, 1)}%–${fmt(v1 * 100, 1)}%`;
  chart.append(t);
}

function sideCells(o) {
  if (!o) return Array.from({ length: 7 }, () => el("td", {}, ""));
  return [fmt(o.bid), fmt(o.ask), fmt(o.iv * 100, 1), fmt(o.delta, 2), fmt(o.gamma, 4),
    fmt(o.vega / 100, 3), o.open_interest].map((v) => el("td", {}, v));
}

let chainView = null;
function drawChainTable() {
  const table = $("chain-table");
  table.textContent = "";
  if (!chainView) return;
  const exp = chainView.expiries.find((e) => e.expiry === $("chain-expiry").value) || chainView.expiries[0];
  drawSmile(exp);
  if (!exp) return;
  const heads = ["bid", "ask", "IV %", "Δ", "Γ", "vega/pt", "OI"];
  table.append(el("tr", {}, ...heads.map((h) => el("th", {}, `C ${h}`)), el("th", {}, "strike"),
    ...heads.map((h) => el("th", {}, `P ${h}`))));
  for (const row of exp.strikes) {
    table.append(el("tr", { "data-strike": row.strike }, ...sideCells(row.call),
      el("td", { class: "k" }, row.strike), ...sideCells(row.put)));
  }
}

async function loadChain() {
  const u = $("chain-underlying").value;
  if (!u) return;
  const r = await fetch(`/api/chain/${encodeURIComponent(u)}`);
  if (!r.ok) return;
  chainView = await r.json();
  const sel = $("chain-expiry");
  const keep = sel.value;
  sel.textContent = "";
  for (const e of chainView.expiries) sel.append(el("option", { value: e.expiry }, `${e.expiry} (${fmt(e.days, 1)}d)`));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  const v = chainView;
  $("chain-summary").textContent =
    `${v.underlying} ${v.sector || ""} spot ${fmt(v.spot)} · net GEX $${fmt(v.gex_total / 1e6, 1)}M per 1% · ` +
    `call wall ${v.call_wall ? v.call_wall[0] : "–"} · put wall ${v.put_wall ? v.put_wall[0] : "–"} · ` +
    `gamma flip ${v.gamma_flip ? fmt(v.gamma_flip) : "none in range"}`;
  drawGex(v);
  drawChainTable();
}

for (const id of ["f-underlying", "f-sector", "f-direction", "f-min-score", "f-factor"]) {
  $(id).addEventListener("input", render);
}
$("chain-underlying").addEventListener("change", loadChain);
$("chain-expiry").addEventListener("change", drawChainTable);

connect();
loadHealth();
loadUnderlyings();
setInterval(loadHealth, 2000);
setInterval(loadUnderlyings, 10000);
setInterval(loadChain, 5000);
