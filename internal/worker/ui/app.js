// friendsync status page: polls /ui/api/stats and renders it. No
// dependencies; every asset is embedded in the worker binary.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const interval = Math.max(250, Number(params.get("interval")) || 1000);
  const keep = 120; // points kept for the sparklines
  const history = { received: [], calls: [], backlog: [] };

  const $ = (id) => document.getElementById(id);

  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const d = digits === undefined ? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2) : digits;
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return v.toFixed(d);
  }
  const int = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"));
  function secs(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 1 : 0) + " ms";
    if (v < 120) return v.toFixed(2) + " s";
    return (v / 60).toFixed(1) + " min";
  }
  const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%");

  function set(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function rows(tableId, list, render) {
    const body = $(tableId).tBodies[0];
    const frag = document.createDocumentFragment();
    for (const item of list) {
      const tr = document.createElement("tr");
      for (const c of render(item)) tr.appendChild(c);
      frag.appendChild(tr);
    }
    if (list.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("none yet", "muted");
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
  }

  function push(series, v) {
    series.push(v);
    if (series.length > keep) series.shift();
  }

  function spark(svgId, lines) {
    const svg = $(svgId);
    const vb = svg.viewBox.baseVal;
    let top = 1;
    for (const l of lines) for (const v of l) top = Math.max(top, v);
    const polys = svg.querySelectorAll("polyline");
    lines.forEach((l, i) => {
      const step = vb.width / (keep - 1);
      const x0 = vb.width - step * (l.length - 1);
      const pts = l.map((v, j) => (x0 + j * step).toFixed(1) + "," + (vb.height - 2 - (v / top) * (vb.height - 4)).toFixed(1));
      polys[i].setAttribute("points", pts.join(" "));
    });
  }

  function barCell(use, fallback) {
    const td = document.createElement("td");
    const bar = document.createElement("div");
    bar.className = "bar" + (use > 0.9 ? " hot" : "") + (fallback ? " fallback" : "");
    const fill = document.createElement("i");
    fill.style.width = Math.min(100, use * 100).toFixed(1) + "%";
    const label = document.createElement("span");
    label.textContent = pct(use);
    bar.append(fill, label);
    td.appendChild(bar);
    return td;
  }

  function render(s) {
    set("worker", s.worker || "");
    set("updated", new Date(s.time).toLocaleTimeString());
    set("window", s.window_seconds > 0 ? s.window_seconds.toFixed(1) + " s" : "(first sample)");

    const t = s.throughput, tot = s.totals;
    set("rate-received", fmt(t.received));
    set("rate-acked", fmt(t.acked));
    set("rate-retried", fmt(t.retried));
    set("rate-dlq", fmt(t.dead_lettered));
    set("rate-calls", fmt(t.vendor_calls));
    set("rate-items", fmt(t.items));
    set("total-received", int(tot.received));
    set("total-acked", int(tot.acked));
    set("total-retried", int(tot.retried));
    set("total-calls", int(tot.vendor_calls));
    set("total-items", int(tot.items));
    if (s.window_seconds > 0) {
      push(history.received, t.received);
      push(history.calls, t.vendor_calls);
    }
    spark("spark-throughput", [history.received, history.calls]);

    const b = s.backlog;
    set("backlog-pending", int(b.pending));
    set("backlog-ackpending", int(b.ack_pending));
    set("backlog-buffered", int(b.buffered));
    set("backlog-accounts", int(b.accounts));
    set("backlog-inflight", int(b.in_flight));
    push(history.backlog, b.pending + b.buffered);
    spark("spark-backlog", [history.backlog]);

    const c = s.coalescing;
    set("coal-events", int(c.events));
    set("coal-calls", int(c.calls));
    set("coal-saved", int(c.saved));
    set("coal-saved-pct", pct(c.saved_fraction));
    set("coal-items-per-call", fmt(c.items_per_call));
    set("coal-events-per-item", fmt(c.events_per_item));

    rows("budgets", s.budgets || [], (u) => [
      cell(u.budget, "mono"), cell(u.vendor), cell(fmt(u.granted), "n"), cell(fmt(u.rate), "n"),
      barCell(u.use, u.fallback), cell(fmt(u.factor), "n"), cell(secs(u.wait_p50), "n"), cell(secs(u.wait_p99), "n"),
      cell(u.fallback ? "LOCAL FALLBACK" : "shared", u.fallback ? "warn" : "muted"),
    ]);

    const e = s.latency.e2e;
    set("lat-p50", secs(e.p50));
    set("lat-p90", secs(e.p90));
    set("lat-p99", secs(e.p99));
    rows("vendor-latency", s.latency.vendor || [], (v) => [
      cell(v.vendor), cell(v.api, "mono"), cell(secs(v.p50), "n"), cell(secs(v.p99), "n"), cell(int(v.count), "n"),
    ]);

    rows("calls", (s.calls || []).filter((x) => x.total > 0), (x) => [
      cell(x.vendor), cell(x.api, "mono"), cell(x.class, x.class === "ok" ? "ok" : "warn"), cell(int(x.total), "n"), cell(fmt(x.rate), "n"),
    ]);
    const outs = Object.entries(s.outcomes || {}).sort();
    rows("outcomes", outs, ([k, v]) => [cell(k), cell(int(v.total), "n"), cell(fmt(v.rate), "n")]);

    const dl = Object.entries(s.dead_letters.by_reason || {}).sort();
    rows("dead-letters", dl, ([k, v]) => [cell(k), cell(int(v.total), v.total > 0 ? "n warn" : "n"), cell(fmt(v.rate), "n")]);
    set("dlq-stranded", int(s.dead_letters.stranded));
    set("dlq-errors", int(s.dead_letters.publish_errors));

    const p = s.partitions;
    set("part-owned", int(p.owned));
    set("part-unowned", int(p.unowned));
    set("part-members", int(p.members));
    $("part-unowned").className = p.unowned > 0 ? "warn" : "";
  }

  async function poll() {
    try {
      const r = await fetch("api/stats", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      set("conn", "live");
      $("conn").className = "pill live";
    } catch (err) {
      set("conn", "offline: " + err.message);
      $("conn").className = "pill down";
    } finally {
      setTimeout(poll, interval);
    }
  }
  poll();
})();
