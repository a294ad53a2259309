// Amber status page: polls status.json and looks up an address or a
// script over the node's WebSocket listener with the Electrum protocol.
"use strict";

const $ = (id) => document.getElementById(id);
let status = null;

function text(id, v) { $(id).textContent = v; }

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 120) return Math.round(s) + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

function el(tag, attrs, children) {
  const e = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") e.setAttribute(k, v);
  for (const c of children || []) e.append(c);
  return e;
}

// histogram draws the fee histogram (highest rate first) as an SVG bar
// chart: one bar per bucket, its height the bucket's vsize.
function histogram(buckets) {
  const box = $("histogram");
  box.replaceChildren();
  if (!buckets.length) { box.append(el("p", { class: "small" }, ["Fee histogram: empty mempool."])); return; }
  const bs = buckets.slice().reverse(), W = 320, H = 110, pad = 16;
  const maxV = Math.max(...bs.map((b) => b.vsize)), bw = (W - 4) / bs.length;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H + pad}`, width: W, height: H + pad, role: "img" });
  bs.forEach((b, i) => {
    const h = Math.max(1, (b.vsize / maxV) * (H - 12));
    const r = el("rect", { svg: 1, class: "bar", x: 2 + i * bw, y: H - h, width: Math.max(1, bw - 2), height: h });
    r.append(el("title", { svg: 1 }, [`≥ ${b.rate} sat/vB: ${b.vsize} vB`]));
    svg.append(r);
    if (bs.length <= 12 || i % Math.ceil(bs.length / 12) === 0)
      svg.append(el("text", { svg: 1, x: 2 + i * bw, y: H + 12 }, [String(b.rate)]));
  });
  box.append(svg, el("div", { class: "small" }, ["fee rate (sat/vB) → vsize"]));
}

function render(s) {
  status = s;
  text("network", s.network);
  $("state").className = "pill " + (s.serving ? "ok" : "bad");
  text("state", s.serving ? "serving" : "starting");
  text("tip-height", s.height >= 0 ? s.height : "—");
  text("tip-hash", s.hash || "—");
  text("daemon-height", s.daemon_height >= 0 ? s.daemon_height : "no answer");
  text("lag", s.daemon_height >= 0 ? s.lag + (s.lag === 1 ? " block" : " blocks") : "unknown");
  const snap = $("snapshot");
  snap.replaceChildren();
  if (s.snapshot) {
    snap.append(el("dt", {}, ["Key"]), el("dd", { class: "mono" }, [s.snapshot.key]),
      el("dt", {}, ["Height"]), el("dd", {}, [String(s.snapshot.height)]),
      el("dt", {}, ["Age"]), el("dd", {}, [ago(s.snapshot.created)]));
  } else {
    snap.append(el("dt", {}, ["In use"]), el("dd", {}, ["none (own index)"]));
  }
  const tb = $("sessions").tBodies[0];
  tb.replaceChildren();
  const sess = s.sessions || {};
  for (const k of Object.keys(sess).sort()) tb.append(el("tr", {}, [el("td", {}, [k]), el("td", { id: "sessions-" + k }, [String(sess[k])])]));
  text("listeners", (s.listeners || []).map((l) => `${l.proto}://${l.addr}`).join("  "));
  text("mempool-txs", s.mempool_txs);
  text("mempool-vsize", s.mempool_vsize + " vB");
  histogram(s.fee_histogram || []);
}

async function refresh() {
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    render(await r.json());
  } catch (e) {
    $("state").className = "pill bad";
    text("state", "unreachable");
  }
}

// wsURL picks the node's WebSocket listener, wss first on an https page;
// an unspecified listening host means this page's host.
function wsURL(s) {
  const ls = s.listeners || [];
  const pref = location.protocol === "https:" ? ["wss", "ws"] : ["ws", "wss"];
  for (const p of pref) {
    const l = ls.find((x) => x.proto === p);
    if (!l) continue;
    let host = l.addr;
    const m = host.match(/^(.*):(\d+)$/);
    if (m && (m[1] === "0.0.0.0" || m[1] === "[::]")) host = location.hostname + ":" + m[2];
    return `${p}://${host}/`;
  }
  return null;
}

// electrum opens url and sends the calls in order, resolving with their
// results.
function electrum(url, calls) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url), results = [];
    const timer = setTimeout(() => { ws.close(); reject(new Error("no answer in 10 s")); }, 10000);
    const send = (i) => ws.send(JSON.stringify({ jsonrpc: "2.0", id: i, method: calls[i][0], params: calls[i][1] }));
    ws.onopen = () => send(0);
    ws.onerror = () => { clearTimeout(timer); reject(new Error("cannot connect to " + url)); };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id === undefined || m.id === null) return; // a notification
      if (m.error) { clearTimeout(timer); ws.close(); reject(new Error(calls[m.id][0] + ": " + m.error.message)); return; }
      results[m.id] = m.result;
      if (m.id + 1 < calls.length) { send(m.id + 1); return; }
      clearTimeout(timer);
      ws.close();
      resolve(results);
    };
  });
}

const btc = (sats) => (sats / 1e8).toFixed(8) + " BTC";

async function lookup(q) {
  const out = $("lookup-result");
  out.className = "small";
  out.textContent = "Looking up…";
  try {
    if (!status) await refresh();
    const url = wsURL(status);
    if (!url) throw new Error("this server has no ws:// or wss:// listener");
    const key = /^([0-9a-fA-F]{2})+$/.test(q) ? "script" : "address";
    const r = await fetch(`scripthash?${key}=${encodeURIComponent(q)}`);
    const sh = await r.json();
    if (sh.error) throw new Error(sh.error);
    const [, bal, hist] = await electrum(url, [
      ["server.version", ["amber-status", "1.4"]],
      ["blockchain.scripthash.get_balance", [sh.scripthash]],
      ["blockchain.scripthash.get_history", [sh.scripthash]],
    ]);
    const dl = el("dl", { id: "lookup-dl" }, [
      el("dt", {}, ["Script hash"]), el("dd", { class: "mono", id: "lookup-scripthash" }, [sh.scripthash]),
      el("dt", {}, ["Confirmed"]), el("dd", { id: "balance-confirmed", "data-sats": bal.confirmed }, [`${btc(bal.confirmed)} (${bal.confirmed} sat)`]),
      el("dt", {}, ["Unconfirmed"]), el("dd", { id: "balance-unconfirmed", "data-sats": bal.unconfirmed }, [`${btc(bal.unconfirmed)} (${bal.unconfirmed} sat)`]),
      el("dt", {}, ["Transactions"]), el("dd", { id: "history-count" }, [String(hist.length)]),
      el("dt", {}, ["Asked"]), el("dd", { class: "mono" }, [url]),
    ]);
    out.replaceChildren(dl);
  } catch (e) {
    out.className = "small error";
    out.textContent = String(e.message || e);
  }
}

$("lookup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("lookup-input").value.trim();
  if (q) lookup(q);
});

refresh().then(() => {
  const q = new URLSearchParams(location.search).get("lookup");
  if (q) { $("lookup-input").value = q; lookup(q); }
});
setInterval(refresh, 5000);
