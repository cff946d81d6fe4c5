"use strict";
// seapo inspect: renders the run's data (computed by seapo.inspect.data) as text nodes only.
(function () {
  const ROW = 52, COLORS = ["#1f6fb5", "#e07b00", "#2b9348", "#8e44ad", "#c0392b", "#7f8c8d"];
  const OUTCOME_COLORS = { accepted: "#2b9348", fallen_back: "#d4a000", rejected: "#c0392b" };
  const SVGNS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const S = { data: null, items: [], view: [], sel: -1, filters: {}, timings: {} };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v; else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false)
      e.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  const fmt = (v, d = 3) => v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(d)) : String(v);
  // One way to write a figure with its interval (as seapo.profile.stats.format_interval does): three
  // decimals for the value and both bounds, whole numbers included ("0.000 [0.000, 0.000]").
  const fixed3 = (v) => v === null || v === undefined || v === "" ? "–" : Number(v).toFixed(3);
  const interval = (v, lo, hi) => v === null || v === undefined ? "–" : `${fixed3(v)} [${fixed3(lo)}, ${fixed3(hi)}]`;
  const label = (s) => String(s).replace(/_/g, " ");

  async function load() {
    const t0 = performance.now();
    const node = $("data");
    let text = node.textContent;
    if (node.dataset.encoding === "gzip") {
      let bytes;
      if (Uint8Array.fromBase64) bytes = Uint8Array.fromBase64(text.trim());
      else { const bin = atob(text.trim()); bytes = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i); }
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      text = await new Response(stream).text();
    }
    node.textContent = "";  // free the payload
    const t1 = performance.now();
    S.data = JSON.parse(text);
    const t2 = performance.now();
    S.items = S.data.items;
    S.items.forEach((it, i) => { it._i = i; });
    renderSummary(); setupBrowser(); renderInputs();
    S.timings = { decode_ms: t1 - t0, parse_ms: t2 - t1, render_ms: performance.now() - t2 };
    $("status").textContent = `${S.items.length} items`;
    document.body.dataset.ready = "1";
  }

  // ---------- charts (inline SVG) ----------
  function legend(names, colors) {
    return el("div", { class: "legend" }, names.map((n, i) => el("span", {}, el("span", { class: "sw", style: `background:${colors[i]}` }), label(n))));
  }
  // A category label is a string or an array of lines (drawn one under the other, never cut: the
  // category is made as wide as its longest line, and the full label is the bar's tooltip too).
  const labelLines = (c) => (Array.isArray(c) ? c : [c]).map((x) => label(x));
  function bars(cats, series, { title = "", stacked = true, height = 180, tops = null, id = null } = {}) {
    const lineCount = Math.max(1, ...cats.map((c) => labelLines(c).length));
    const longest = Math.max(0, ...cats.flatMap((c) => labelLines(c).map((x) => x.length)));
    const bw = Math.max(stacked ? 60 : 20 * series.length + 16, longest * 6.4 + 10);
    const pad = 36, bottom = 8 + 13 * lineCount, w = Math.max(260, cats.length * bw + pad + 8), h = height + 13 * (lineCount - 1);
    const totals = cats.map((_, i) => stacked ? series.reduce((s, se) => s + (se.values[i] || 0), 0) : Math.max(0, ...series.map((se) => se.values[i] || 0)));
    const max = Math.max(1e-9, ...totals);
    const s = svg("svg", { width: w, height: h, role: "img", "aria-label": title, viewBox: `0 0 ${w} ${h}` });
    if (id) s.id = id;
    s.appendChild(svg("line", { x1: pad, y1: h - bottom, x2: w - 4, y2: h - bottom, stroke: "#888" }));
    s.appendChild(svg("text", { x: 2, y: 12 }, fmt(max, 1)));
    cats.forEach((c, i) => {
      let y = h - bottom;
      const name = labelLines(c).join(" ");
      series.forEach((se, k) => {
        const v = se.values[i] || 0, bh = (h - bottom - 16) * v / max;
        const x = stacked ? pad + i * bw + 4 : pad + i * bw + 4 + k * ((bw - 8) / series.length);
        const width = stacked ? bw - 8 : (bw - 8) / series.length - 1;
        const top = stacked ? y - bh : h - bottom - bh;
        const r = svg("rect", { x, y: top, width: Math.max(1, width), height: bh, fill: se.color, "data-cat": name, "data-series": se.name, "data-value": v });
        r.appendChild(svg("title", {}, `${name} · ${label(se.name)}: ${fmt(v, 2)}`));
        s.appendChild(r);
        if (!stacked && se.values[i] !== null && se.values[i] !== undefined) s.appendChild(svg("text", { x: x, y: top - 2 }, fmt(v, 1)));
        if (stacked) y -= bh;
      });
      if (stacked) s.appendChild(svg("text", { x: pad + i * bw + 4, y: y - 2 }, tops ? tops[i] : fmt(totals[i])));
      const text = svg("text", { x: pad + i * bw + bw / 2, y: h - bottom + 13, "text-anchor": "middle", class: "cat" });
      labelLines(c).forEach((line, n) => text.appendChild(svg("tspan", { x: pad + i * bw + bw / 2, dy: n ? 13 : 0 }, line)));
      s.appendChild(text);
    });
    return el("figure", {}, s, legend(series.map((x) => x.name), series.map((x) => x.color)));
  }
  function lines(series, { xlab = "step", title = "" } = {}) {
    const w = 420, h = 190, pad = 44, bottom = 28;
    const pts = series.flatMap((s) => s.points);
    if (!pts.length) return el("p", { class: "muted" }, "nothing logged");
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
    const X = (x) => pad + (w - pad - 8) * (x - x0) / (x1 - x0), Y = (y) => h - bottom - (h - bottom - 10) * (y - y0) / (y1 - y0 || 1);
    const s = svg("svg", { width: w, height: h, role: "img", "aria-label": title, viewBox: `0 0 ${w} ${h}` });
    s.appendChild(svg("line", { x1: pad, y1: h - bottom, x2: w - 4, y2: h - bottom, stroke: "#888" }));
    s.appendChild(svg("text", { x: 2, y: 14 }, fmt(y1)));
    s.appendChild(svg("text", { x: 2, y: h - bottom }, fmt(y0)));
    s.appendChild(svg("text", { x: pad, y: h - 8 }, `${xlab} ${fmt(x0)}`));
    s.appendChild(svg("text", { x: w - 70, y: h - 8 }, fmt(x1)));
    series.forEach((se) => {
      s.appendChild(svg("polyline", { fill: "none", stroke: se.color, "stroke-width": 2, points: se.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" ") }));
      se.points.forEach((p) => s.appendChild(svg("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: se.color })));
    });
    return el("figure", {}, s, legend(series.map((x) => x.name), series.map((x) => x.color)));
  }
  function whiskers(rows, { lo = 0, hi = 1, title = "", id = null } = {}) {  // rows: {label, value, low, high, color}
    const w = 420, rh = 20, left = 150, h = rows.length * rh + 24;
    const X = (v) => left + (w - left - 12) * (v - lo) / (hi - lo || 1);
    const s = svg("svg", { width: w, height: h, role: "img", "aria-label": title, viewBox: `0 0 ${w} ${h}` });
    if (id) s.id = id;
    [lo, (lo + hi) / 2, hi].forEach((t) => { s.appendChild(svg("line", { x1: X(t), y1: 0, x2: X(t), y2: h - 16, stroke: "#ddd", class: "grid", "data-at": t })); s.appendChild(svg("text", { x: X(t) - 8, y: h - 4 }, fmt(t, 2))); });
    rows.forEach((r, i) => {
      const y = i * rh + 12;
      s.appendChild(svg("text", { x: 2, y: y + 4 }, String(r.label).slice(0, 24)));
      if (r.value === null || r.value === undefined) return;
      const has = (v) => v !== null && v !== undefined;
      if (has(r.low) && has(r.high)) {
        s.appendChild(svg("line", { x1: X(r.low), y1: y, x2: X(r.high), y2: y, stroke: r.color, "stroke-width": 2, class: "whisker" }));
        for (const b of [r.low, r.high]) s.appendChild(svg("line", { x1: X(b), y1: y - 4, x2: X(b), y2: y + 4, stroke: r.color, "stroke-width": 2 }));
      }
      const c = svg("circle", { cx: X(r.value), cy: y, r: 4, fill: r.color, "data-label": r.label, "data-value": r.value, "data-low": has(r.low) ? r.low : "", "data-high": has(r.high) ? r.high : "" });
      c.appendChild(svg("title", {}, `${r.label}: ${interval(r.value, r.low, r.high)}`));
      s.appendChild(c);
    });
    return el("figure", {}, s);
  }
  function table(head, rows, attrs) {
    return el("table", attrs || {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((r) => el("tr", r.attrs || {}, r.cells.map((c) => c instanceof Node ? el("td", {}, c) : el("td", {}, c))))));
  }
  const panel = (title, attrs, ...kids) => el("div", { ...attrs, class: "panel" + (WIDE.test(title) ? " wide" : "") }, el("h2", {}, title), ...kids);
  const WIDE = /^(Injection|Held-out|Evaluation|Error profile|Mix of error types)/;

  // ---------- summary ----------
  function renderSummary() {
    const d = S.data, sm = d.summary || {}, root = $("tab-summary"), per = sm.per_type || {}, types = Object.keys(per);
    const out = [];
    const counts = { accepted: 0, fallen_back: 0, rejected: 0 };
    S.items.forEach((it) => { counts[it.status]++; });
    out.push(panel("Injection", { id: "injection" },
      el("p", {}, `injector ${sm.injector || "?"} (${sm.injector_fingerprint || ""}), fallback ${sm.fallback || "?"}, judge ${sm.judge || "none"}, strategy ${sm.strategy || "?"}: `,
        el("b", { id: "n-pairs" }, fmt(sm.pairs)), " pairs from ", el("b", { id: "n-records" }, fmt(sm.records)), " records, ",
        el("b", { id: "n-rejected" }, fmt(sm.rejected_items)), " items rejected."),
      table(["error type", "planned", "attempted", "accepted", "fallen back", "rejected", "rejected by judge", "judge agreement", "mean difference", "mean attempts"],
        types.map((t) => ({ attrs: { "data-type": t }, cells: [t, ...["planned", "attempted", "accepted", "fallen_back", "rejected", "judge_rejected", "judge_agreement", "mean_difference", "mean_attempts"].map((k) => el("span", { "data-k": k }, fmt(per[t][k])))] })),
        { id: "per-type" }),
      bars(types, ["accepted", "fallen_back", "rejected"].map((k) => ({ name: k, color: OUTCOME_COLORS[k], values: types.map((t) => per[t][k] || 0) })), { title: "outcomes per error type" })));
    const reasons = new Set(); types.forEach((t) => Object.keys(per[t].failed_attempt_reasons || {}).forEach((r) => reasons.add(r)));
    if (reasons.size) out.push(panel("Failed attempts: why", { id: "failed-reasons" }, table(["reason", ...types], [...reasons].map((r) => ({ cells: [label(r), ...types.map((t) => fmt((per[t].failed_attempt_reasons || {})[r] || 0))] })))));
    if (d.prepare) out.push(panel("Data (seapo prepare)", { id: "data-prepare" }, el("p", {}, ["read", "kept", "rejected", "filtered", "duplicates", "duplicate_prompts"].map((k) => `${label(k)} ${fmt(d.prepare[k])}`).join(", ") + ` (layout ${d.prepare.format}).`)));
    for (const [name, what] of [["edit_size", "Edit size (changed tokens) of accepted negatives"], ["difference", "Difference (normalized token distance)"]]) {
      const hg = d.histograms[name], ts = Object.keys(hg.counts);
      out.push(panel(what, { id: "histogram-" + name }, ts.length ? bars(hg.bins, ts.map((t, i) => ({ name: t, color: COLORS[i % COLORS.length], values: hg.counts[t] })), { title: what }) : el("p", { class: "muted" }, "no accepted negatives")));
    }
    const dd = (k, v) => [el("dt", {}, k), el("dd", { "data-k": k }, v)];
    const cell = (k, v) => el("span", { "data-k": k }, v);
    if (d.profile && d.profile.missing) {
      out.push(panel("Error profile of the policy", { id: "profile" },
        el("p", { class: "muted" }, `The strategy followed the profile ${d.profile.path}, which is not there any more.`)));
    } else if (d.profile) {
      const p = d.profile, dist = p.distribution || {}, rates = p.rates || {}, types = Object.keys(dist);
      const pol = p.policy || {}, jd = p.judge || {}, iv = p.intervals || {};
      out.push(panel("Error profile of the policy", { id: "profile" },
        el("dl", { class: "meta" }, dd("policy", `${pol.model ?? "?"} (${pol.fingerprint ?? "?"})`),
          dd("data", `${p.data ?? "?"} (${p.data_format ?? "?"}, ${fmt(p.items)} prompts)`),
          dd("judge", `${jd.name ?? "?"} (${jd.fingerprint ?? "?"})`), dd("file", p.path)),
        el("p", {}, cell("answers", fmt(p.answers)), " answers: ", cell("judged_correct", fmt(p.judged_correct)), " judged correct, ",
          cell("erroneous", fmt(p.erroneous)), " erroneous, ", cell("unknown", fmt(p.unknown)), " unknown",
          ` (${fmt(p.truncated_answers)} cut off at the token limit, ${fmt(p.policy_errors)} not answered).`),
        whiskers(types.flatMap((t) => [
          { label: `${t} share`, value: dist[t].share, low: dist[t].low, high: dist[t].high, color: COLORS[0] },
          { label: `${t} rate`, value: (rates[t] || {}).rate, low: (rates[t] || {}).low, high: (rates[t] || {}).high, color: COLORS[1] }]),
        { title: "error profile: shares and rates with their 95% intervals", id: "profile-chart" }),
        legend(["share of the error findings (bootstrap CI)", "rate over the decided answers (Wilson CI)"], [COLORS[0], COLORS[1]]),
        table(["error type", "answers with it", "share [95% CI]", "rate [95% CI]"], types.map((t) => ({ attrs: { "data-type": t },
          cells: [t, cell("count", p.cells[t].count), cell("share", p.cells[t].share), cell("rate", p.cells[t].rate)] })), { id: "profile-types" }),
        el("p", { class: "muted", "data-k": "intervals" }, `Intervals (${Math.round(100 * (iv.confidence ?? 0.95))}%): share — ${iv.distribution ?? "?"}; rate — ${iv.rates ?? "?"}.`),
        (p.warnings || []).map((w) => el("p", { class: "muted" }, "warning: " + w))));
    }
    if (d.plan) {
      const pl = d.plan, types = pl.types, target = pl.target !== null && pl.target !== undefined;
      const how = !target ? "Planned by the strategy alone (the run was not profiled)."
        : pl.strategy === "top" ? "Target: the profile's most common error type for every record."
        : "Target: each type's profile share, with a floor per type: floor + (1 − types × floor) × share.";
      out.push(panel(`Mix of error types (strategy ${pl.strategy ?? "?"})`, { id: "mix" },
        el("p", {}, how, target ? [" Floor ", cell("floor", fmt(pl.floor)), "."] : null),
        table(["error type", ...(target ? ["target mix"] : []), "planned negatives", "planned share"], types.map((t) => ({ attrs: { "data-type": t },
          cells: [t, ...(target ? [cell("target", pl.cells[t].target)] : []), cell("planned", pl.cells[t].planned), cell("realised", pl.cells[t].realised)] })), { id: "mix-types" }),
        bars(types, [{ name: "planned negatives", color: COLORS[0], values: types.map((t) => pl.planned[t] || 0) }],
          { title: "planned negatives per error type", id: "mix-chart", tops: types.map((t) => `${pl.cells[t].planned} (${pl.cells[t].realised})`) })));
    }

    if (d.train) {
      const log = d.train.log || [], keys = new Set(); log.forEach((r) => Object.keys(r).forEach((k) => keys.add(k)));
      const wanted = [...keys].filter((k) => /loss|margin|accurac|reward/.test(k) && !/runtime|per_second/.test(k)).slice(0, 6);
      out.push(panel("Training", { id: "training" }, el("p", {}, `${d.train.algo || ""} ${fmt(d.train.train_pairs)} training pairs, ${fmt(d.train.heldout_pairs)} held out, ${fmt(d.train.steps)} steps.`),
        wanted.map((k, i) => el("div", {}, el("h3", {}, label(k)), lines([{ name: k, color: COLORS[i % COLORS.length], points: log.filter((r) => typeof r[k] === "number" && r.step !== undefined).map((r) => [r.step, r[k]]) }], { title: k })))));
    }
    if (d.heldout && d.heldout.before) {
      const h = d.heldout, b = h.before, a = h.after || {}, groups = [["overall", b.overall, a.overall], ...Object.keys(b.per_error_type || {}).map((t) => [t, b.per_error_type[t], (a.per_error_type || {})[t]])];
      const m = (side, metric, key) => ((side || {})[metric] || {})[key];
      const whisker = (g, side, when, color) => ({ label: `${g} ${when}`, value: m(side, "divergent_span", "accuracy"), low: (m(side, "divergent_span", "accuracy_ci") || [])[0], high: (m(side, "divergent_span", "accuracy_ci") || [])[1], color });
      out.push(panel("Held-out preference accuracy (95% bootstrap CI over records)", { id: "heldout" },
        whiskers(groups.flatMap(([g, bb, aa]) => [whisker(g, bb, "before", "#999"), whisker(g, aa, "after", "#1f6fb5")]), { title: "held-out divergent-span accuracy" }),
        table(h.columns, h.rows.map((r) => ({ attrs: { "data-group": r[0] }, cells: r })), { id: "heldout-table" }),
        h.verdict ? el("p", {}, el("b", {}, h.verdict)) : null));
    }
    if (d.compare) {
      const c = d.compare;
      // Two-line chart labels: a task row's task above its metric, a dimension above the word "dimension".
      const twoLines = (r) => { if (r.kind === "dimension") return [r.label, "(dimension)"]; const k = r.label.lastIndexOf(" "); return k > 0 ? [r.label.slice(0, k), r.label.slice(k + 1)] : [r.label]; };
      out.push(panel("Evaluation (seapo compare; scores ×100)", { id: "evaluation" },
        table(["task / dimension", ...c.headers], c.rows.map((r) => ({ attrs: { "data-row": r.label, class: r.kind }, cells: [r.label, ...r.cells] })), { id: "compare" }),
        c.rows.length ? bars(c.rows.map(twoLines), c.columns.map((col, i) => ({ name: col, color: COLORS[i % COLORS.length], values: c.rows.map((r) => r.values[i]) })), { stacked: false, title: "evaluation", id: "compare-chart" }) : null,
        (c.notes || []).map((n) => el("p", { class: "muted" }, n))));
    }
    root.replaceChildren(el("div", { class: "panels" }, out));
  }

  // ---------- pairs browser ----------
  const FILTERS = {
    type: (it) => it.type, injector: (it) => it.injector || "none", perturbation: (it) => it.perturbations,
    status: (it) => it.status, judge: (it) => it.judge, heldout: (it) => it.heldout ? "held out" : "not held out",
  };
  const margin = (it, k) => it.heldout && typeof it.heldout[k] === "number" ? it.heldout[k] : null;
  const SORTS = {
    "file order": null,
    "difference ↓": (it) => -(it.difference ?? -Infinity), "difference ↑": (it) => it.difference ?? Infinity,
    "margin after ↓": (it) => -(margin(it, "after") ?? -Infinity), "margin after ↑": (it) => margin(it, "after") ?? Infinity,
    "margin change ↓": (it) => { const a = margin(it, "after"), b = margin(it, "before"); return a === null || b === null ? Infinity : -(a - b); },
    "margin change ↑": (it) => { const a = margin(it, "after"), b = margin(it, "before"); return a === null || b === null ? Infinity : a - b; },
    "changed tokens ↓": (it) => -(it.changed_tokens ?? -Infinity),
  };
  function setupBrowser() {
    for (const [name, get] of Object.entries(FILTERS)) {
      const values = new Map();
      S.items.forEach((it) => [].concat(get(it)).forEach((v) => values.set(v, (values.get(v) || 0) + 1)));
      const sel = $("f-" + name);
      sel.replaceChildren(el("option", { value: "" }, "all"), ...[...values.keys()].sort().map((v) => el("option", { value: v }, `${label(v)} (${values.get(v)})`)));
      sel.addEventListener("change", () => { S.filters[name] = sel.value; apply(); });
    }
    $("f-sort").replaceChildren(...Object.keys(SORTS).map((k) => el("option", { value: k }, k)));
    $("f-sort").addEventListener("change", apply);
    let timer = null;
    $("f-search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 200); });
    $("list").addEventListener("scroll", drawRows);
    $("list").addEventListener("click", (e) => { const r = e.target.closest(".row"); if (r) select(+r.dataset.pos); });
    window.addEventListener("resize", drawRows);
    apply();
  }
  function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function matches(it, re) {
    if (re.test(it.id) || re.test(it.pos) || (it.rationale && re.test(it.rationale)) || (it.reason && re.test(it.reason))) return true;
    if (it.prompt.some((m) => re.test(m[1]))) return true;
    return (it.edits || []).some((e) => re.test(e[2])) || (it.edits && re.test(negative(it)));
  }
  function apply() {
    const t0 = performance.now(), f = S.filters, q = $("f-search").value.trim();
    const re = q ? new RegExp(escapeRe(q), "i") : null;
    const current = S.view[S.sel];
    let view = S.items.filter((it) => {
      for (const [name, get] of Object.entries(FILTERS)) if (f[name] && ![].concat(get(it)).includes(f[name])) return false;
      return !re || matches(it, re);
    });
    const key = SORTS[$("f-sort").value];
    if (key) view = view.map((it) => [key(it), it._i, it]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
    S.view = view;
    $("count").textContent = `${view.length} of ${S.items.length}`;
    const keep = current ? view.indexOf(current) : -1;
    S.sel = -1;
    $("spacer").style.height = view.length * ROW + "px";
    select(keep >= 0 ? keep : view.length ? 0 : -1, keep < 0);
    S.timings.last_filter_ms = performance.now() - t0;
  }
  function drawRows() {
    const list = $("list"), first = Math.max(0, Math.floor(list.scrollTop / ROW) - 4), last = Math.min(S.view.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 4);
    const rows = [];
    for (let p = first; p < last; p++) {
      const it = S.view[p];
      rows.push(el("div", { class: "row", role: "option", "data-pos": p, "data-id": it.id, "aria-selected": p === S.sel ? "true" : "false", style: `top:${p * ROW}px` },
        el("div", { class: "l1" }, el("span", { class: "tag " + it.status }, label(it.status)), el("span", { class: "tag" }, it.type), el("span", { class: "tag" }, it.injector || "–"),
          it.perturbations.length ? el("span", { class: "tag" }, it.perturbations.join("+")) : null, it.heldout ? el("span", { class: "tag heldout" }, "held out") : null,
          el("span", { class: "muted" }, `Δ ${fmt(it.difference, 3)}`)),
        el("div", { class: "l2" }, (it.prompt.length ? it.prompt[it.prompt.length - 1][1] : it.id).slice(0, 160))));
    }
    list.replaceChildren($("spacer"), ...rows);
  }
  function select(p, scrollTop) {
    S.sel = p;
    const list = $("list");
    if (scrollTop) list.scrollTop = 0;
    if (p >= 0) {
      const top = p * ROW;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW - list.clientHeight;
    }
    drawRows();
    renderDetail(p >= 0 ? S.view[p] : null);
  }
  function negative(it) {
    let out = "", at = 0;
    for (const [a, b, r] of it.edits || []) { out += it.pos.slice(at, a) + r; at = b; }
    return out + it.pos.slice(at);
  }
  function diffSides(it) {
    const pos = el("div", { class: "text", "data-side": "positive" }), neg = el("div", { class: "text", "data-side": "negative" });
    let at = 0;
    for (const [a, b, r] of it.edits) {
      const old = it.pos.slice(a, b), plain = it.pos.slice(at, a);
      pos.append(plain); neg.append(plain);
      if (!old.trim() && !r.trim()) { pos.append(old); neg.append(r); }  // white space only: not an edit worth marking
      else {
        pos.append(old ? el("del", { class: "d", title: "removed" }, old) : el("del", { class: "d empty", title: "text inserted here in the negative" }));
        neg.append(r ? el("ins", { class: "i", title: "added" }, r) : el("ins", { class: "i empty", title: "text removed here" }));
      }
      at = b;
    }
    pos.append(it.pos.slice(at)); neg.append(it.pos.slice(at));
    return [pos, neg];
  }
  function renderDetail(it) {
    const box = $("detail");
    if (!it) { box.replaceChildren(el("p", { class: "muted" }, "nothing matches")); return; }
    const meta = [["id", it.id], ["record", it.record], ["error type", it.type],
      ["outcome", label(it.status) + (it.reason ? ` (${label(it.reason)})` : "")],
      ["injector", (it.injector || "–") + (it.status === "fallen_back" ? " (fallback after the primary injector failed)" : "")],
      ["perturbation", it.perturbations.join(", ") || "–"],
      ["difference", fmt(it.difference, 4)], ["changed tokens", fmt(it.changed_tokens)], ["diff edits", fmt(it.words)], ["attempts", fmt(it.attempts)],
      ["judge", it.judge === "none" ? "no judge" : `${it.judge} (${it.judge_name || "?"}): ${it.type}`], ["rationale", it.rationale || "–"]];
    if (it.heldout) {
      const h = it.heldout, ch = typeof h.after === "number" && typeof h.before === "number" ? h.after - h.before : null;
      meta.push(["held-out margin", `divergent span before ${fmt(h.before)}, after ${fmt(h.after)}, change ${fmt(ch)}; implicit reward after ${fmt(h.reward)}`]);
    }
    if (it.rules_edits && it.rules_edits.length) meta.push(["rules edits", it.rules_edits.map((e) => `${e.perturbation} at [${(e.span || []).join(", ")}]: "${e.original}" → "${e.replacement}"`).join("; ")]);
    if (it.cut) meta.push(["note", "long text cut for the page"]);
    const attempts = (it.failed || []).map((a, k) => el("div", { class: "attempt" }, el("b", {}, `attempt ${k + 1}: `), `${a.injector || "?"}, ${label(a.reason || "passed")}, difference ${fmt(a.difference)}, changed tokens ${fmt(a.changed_tokens)}`,
      a.error ? el("div", {}, "backend error: " + a.error) : null,
      a.judge ? el("div", {}, "judge: " + Object.entries(a.judge).map(([t, f]) => `${t} ${f}`).join(", ") + (a.rationale ? ` — ${a.rationale}` : "")) : null,
      a.text ? el("details", {}, el("summary", {}, "text"), el("div", { class: "text" }, a.text)) : null));
    const sides = it.edits ? diffSides(it) : [el("div", { class: "text", "data-side": "positive" }, it.pos || "(record not found)"), el("div", { class: "text muted", "data-side": "negative" }, "(no negative)")];
    box.replaceChildren(...[
      el("dl", { class: "meta" }, meta.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-k": k }, v)])),
      attempts.length ? el("div", {}, el("h3", {}, it.status === "rejected" ? "Attempts (all failed)" : "Failed attempts before this one"), attempts) : null,
      el("div", { class: "sides" },
        el("div", { class: "side" }, el("h3", {}, "Prompt"), it.prompt.map((m) => el("div", {}, el("div", { class: "muted" }, m[0]), el("div", { class: "text", "data-side": "prompt" }, m[1])))),
        el("div", { class: "side" }, el("h3", {}, "Positive (original)"), sides[0]),
        el("div", { class: "side" }, el("h3", {}, "Negative (" + it.type + " injected)"), sides[1]))].filter(Boolean));
  }

  // ---------- input rejects ----------
  function renderInputs() {
    const rows = S.data.input_rejects || [], root = $("tab-inputs");
    let shown = 0;
    const body = el("tbody");
    const more = el("button", { on: { click: () => add(500) } }, "show more");
    function add(n) {
      for (const r of rows.slice(shown, shown + n)) body.appendChild(el("tr", {}, el("td", {}, String(r.file ?? "")), el("td", {}, String(r.line ?? "")), el("td", {}, String(r.field ?? "")), el("td", {}, String(r.kind ?? "")), el("td", {}, String(r.reason ?? "")), el("td", {}, el("details", {}, el("summary", {}, "row"), el("div", { class: "text" }, r.raw || "")))));
      shown = Math.min(rows.length, shown + n); more.hidden = shown >= rows.length;
    }
    add(500);
    root.replaceChildren(el("h2", {}, `Input rows seapo prepare rejected: ${rows.length}`),
      rows.length ? el("table", { id: "input-rejects" }, el("thead", {}, el("tr", {}, ["file", "line", "field", "kind", "reason", "raw"].map((h) => el("th", {}, h)))), body) : el("p", { class: "muted" }, "none (or no records.rejects.jsonl found)"), more);
  }

  // ---------- tabs and keys ----------
  function tab(name) {
    document.querySelectorAll("nav button").forEach((b) => b.setAttribute("aria-selected", b.dataset.tab === name ? "true" : "false"));
    document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== "tab-" + name; });
    if (name === "items") { drawRows(); $("list").focus(); }
  }
  document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => tab(b.dataset.tab)));
  document.addEventListener("keydown", (e) => {
    const t = e.target, typing = t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA";
    if (typing) { if (e.key === "Escape" || (e.key === "Enter" && t.tagName === "INPUT")) { t.blur(); $("list").focus(); } return; }
    if (e.ctrlKey || e.metaKey || e.altKey || !S.data) return;
    const n = S.view.length, moves = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1, PageDown: 10, PageUp: -10, Home: -Infinity, End: Infinity };
    if (e.key in moves && !$("tab-items").hidden) {
      e.preventDefault();
      if (n) select(Math.max(0, Math.min(n - 1, (S.sel < 0 ? 0 : S.sel) + moves[e.key])));
    } else if (e.key === "/") { e.preventDefault(); tab("items"); $("f-search").focus(); }
    else if (e.key === "1" || e.key === "2" || e.key === "3") tab(["summary", "items", "inputs"][+e.key - 1]);
  });
  window.inspector = { state: S, view: () => S.view.map((it) => it.id), select, tab, negative, timings: () => S.timings };
  load().catch((err) => { $("status").textContent = "could not load the data: " + err; document.body.dataset.ready = "error"; });
})();
