// The modelhost console: reads this server's own JSON and Prometheus text and draws it.
//
// Hand-written, no framework and no build step, so the binary embeds it as it is. Everything is
// fetched from this origin; the monitoring routes get the bearer token when the operator gave
// one (kept in sessionStorage, so it leaves with the tab). Until a guarded route answers, its
// section shows that it needs the token and nothing else. Every state drawn in colour also has
// a word or a shape, so the page reads without colour.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "modelhost.monitoring-token";
const HISTORY_EVERY_MS = 30000;
const SPARK_SAMPLES = 60;
const PREDICTION_ROUTE = (route) => route === "/predict" || route.endsWith("/infer");

const state = {
    timer: null,
    schemaKey: null,
    lastSample: null,
    rates: [],
    historyAt: 0,
    eventsKey: null,
    needsToken: false,
    busy: false,
};

// ---- small DOM helpers ----------------------------------------------------------------------

function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
        if (value === null || value === undefined || value === false) continue;
        if (key === "text") node.textContent = value;
        else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
        if (child !== null && child !== undefined) node.append(child);
    }
    return node;
}

function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
        if (key === "text") node.textContent = value;
        else node.setAttribute(key, value);
    }
    for (const child of children) {
        if (child) node.append(child);
    }
    return node;
}

function replace(id, ...children) {
    document.getElementById(id).replaceChildren(...children);
}

function fixed(value, digits) {
    return value === null || value === undefined || Number.isNaN(value) ? "—" : Number(value).toFixed(digits);
}

function table(headers, rows, caption) {
    return el("div", { class: "table-wrap" },
        el("table", {},
            caption ? el("caption", { class: "note", text: caption }) : null,
            el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", class: h.num ? "num" : null, text: h.label || h })))),
            el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c, i) =>
                c instanceof Node ? el("td", {}, c) : el("td", { class: headers[i].num ? "num" : null, text: c }))))),
        ));
}

// ---- fetching -------------------------------------------------------------------------------

function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
}

class NeedsToken extends Error {}

/// A monitoring route: with the bearer token when there is one; NeedsToken on 401.
async function guarded(path, as) {
    const headers = {};
    if (token()) headers.Authorization = "Bearer " + token();
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 401) throw new NeedsToken(path);
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return as === "text" ? response.text() : response.json();
}

// ---- the serving model ----------------------------------------------------------------------

function showModel(model, status) {
    const serving = document.getElementById("serving");
    if (status !== 200) {
        serving.textContent = `Not serving: ${model.error}`;
        replace("model-body", el("p", { class: "error", text: `No model is serving: ${model.error}` }),
            model.last_error ? el("p", { text: `Last refused candidate: ${model.last_error}` }) : null);
        return;
    }
    serving.textContent = `Serving ${model.name} ${model.version}`;
    state.serving = model.version;
    const facts = el("dl", { class: "facts" });
    const fact = (term, value, cls) => facts.append(el("dt", { text: term }), el("dd", { class: cls, text: value }));
    fact("name", model.name);
    fact("version", model.version, "mono");
    fact("sha256", model.sha256, "mono");
    fact("loaded at", model.loaded_at);
    fact("task", model.task);
    fact("decision threshold", fixed(model.threshold, 4));
    fact("swaps / refusals", `${model.swaps} / ${model.rejections}`);
    fact("last refused candidate", model.last_error ? `${model.last_error} (${model.last_error_at})` : "none");
    const metrics = Object.entries(model.metrics).map(([name, value]) =>
        [name, Number.isInteger(value) ? String(value) : fixed(value, 4)]);
    const schema = model.schema.map((f) => [f.name, f.kind,
        f.kind === "categorical" ? `${f.vocabulary.join(", ")} (case: ${f.case}; others accepted as unknown)` : `${f.min} – ${f.max}`]);
    replace("model-body", facts,
        el("h3", { text: "Metrics (hold-out)" }),
        table(["metric", { label: "value", num: true }], metrics),
        el("h3", { text: "Input schema" }),
        table(["feature", "kind", "accepts"], schema));
    buildForm(model);
}

// ---- the prediction form --------------------------------------------------------------------

function buildForm(model) {
    const key = JSON.stringify(model.schema);
    if (key === state.schemaKey) return;
    state.schemaKey = key;
    const fields = model.schema.map((feature) => {
        const id = `feature-${feature.name}`;
        const hintId = `${id}-hint`;
        let input;
        if (feature.kind === "categorical") {
            input = el("select", { id, name: feature.name, "aria-describedby": hintId },
                ...feature.vocabulary.map((word) => el("option", { value: word, text: word })));
        } else {
            const mean = model.training?.numeric?.[feature.name]?.mean;
            const start = mean === undefined ? feature.min : mean;
            input = el("input", {
                id, name: feature.name, type: "number", required: true, min: feature.min, max: feature.max,
                step: feature.kind === "integer" ? "1" : "any", inputmode: feature.kind === "integer" ? "numeric" : "decimal",
                value: feature.kind === "integer" ? Math.round(start) : Number(start.toFixed(2)),
                "aria-describedby": hintId,
            });
        }
        const hint = feature.kind === "categorical"
            ? `one of ${feature.vocabulary.join(", ")}`
            : `${feature.kind === "integer" ? "a whole number" : "a number"} from ${feature.min} to ${feature.max}`;
        return el("div", { class: "field" }, el("label", { for: id, text: feature.name }), input,
            el("span", { id: hintId, class: "hint", text: hint }));
    });
    replace("predict-fields", ...fields);
    state.schema = model.schema;
}

async function predict(event) {
    event.preventDefault();
    if (!state.schema) return;
    const body = {};
    for (const feature of state.schema) {
        const raw = document.getElementById(`feature-${feature.name}`).value;
        body[feature.name] = feature.kind === "categorical" || raw.trim() === "" ? raw : Number(raw);
    }
    const result = document.getElementById("predict-result");
    result.textContent = "Asking the model…";
    try {
        const response = await fetch("/predict", {
            method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
        });
        const answer = await response.json();
        if (!response.ok) {
            const details = (answer.detail || []).map((d) => el("li", { text: `${d.field ?? d.loc?.join(".")}: ${d.msg}` }));
            result.replaceChildren(el("p", { class: "error", text: `Refused (${response.status}): ${answer.error}` }),
                details.length ? el("ul", {}, ...details) : null);
            return;
        }
        const facts = el("dl", { class: "facts", id: "prediction" });
        const fact = (term, value, id) => facts.append(el("dt", { text: term }), el("dd", { id, text: value }));
        fact("probability", String(answer.probability), "prediction-probability");
        fact("prediction", `${answer.prediction} (${answer.prediction === 1 ? "churn" : "no churn"})`, "prediction-class");
        fact("model version", answer.model_version, "prediction-version");
        fact("latency", `${answer.latency_ms} ms`);
        fact("request id", answer.request_id);
        result.replaceChildren(facts);
    } catch (error) {
        result.replaceChildren(el("p", { class: "error", text: `The request failed: ${error.message}` }));
    }
}

// ---- live traffic from /metrics ---------------------------------------------------------------

/// Prometheus text → [{name, labels, value}] (comments skipped).
function parseMetrics(text) {
    const samples = [];
    for (const line of text.split("\n")) {
        if (!line || line.startsWith("#")) continue;
        const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
        if (!match) continue;
        const labels = {};
        for (const pair of (match[3] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
            labels[pair[1]] = pair[2];
        }
        samples.push({ name: match[1], labels, value: Number(match[4]) });
    }
    return samples;
}

/// The cumulative counters the rates come from.
function trafficSample(samples) {
    const sample = { at: performance.now(), requests: 0, clientErrors: 0, serverErrors: 0, durationSum: 0, durationCount: 0, buckets: new Map(), predictions: 0 };
    for (const s of samples) {
        if (s.name === "modelhost_predictions_total") sample.predictions += s.value;
        if (!s.labels.route || !PREDICTION_ROUTE(s.labels.route)) continue;
        if (s.name === "modelhost_http_requests_total") {
            sample.requests += s.value;
            if (s.labels.status.startsWith("4")) sample.clientErrors += s.value;
            if (s.labels.status.startsWith("5")) sample.serverErrors += s.value;
        } else if (s.name === "modelhost_http_request_duration_seconds_sum") {
            sample.durationSum += s.value;
        } else if (s.name === "modelhost_http_request_duration_seconds_count") {
            sample.durationCount += s.value;
        } else if (s.name === "modelhost_http_request_duration_seconds_bucket") {
            const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
            sample.buckets.set(le, (sample.buckets.get(le) || 0) + s.value);
        }
    }
    return sample;
}

/// The upper bound of the bucket holding the q-quantile of the requests between two samples.
function quantileBound(now, before, q) {
    const bounds = [...now.buckets.keys()].sort((a, b) => a - b);
    const total = now.durationCount - before.durationCount;
    if (total <= 0) return null;
    for (const le of bounds) {
        if ((now.buckets.get(le) - (before.buckets.get(le) || 0)) >= q * total) return le;
    }
    return null;
}

function showTraffic(text) {
    const now = trafficSample(parseMetrics(text));
    const before = state.lastSample;
    state.lastSample = now;
    if (!before) {
        replace("traffic-body", el("p", { text: "Counting: the rates appear at the next refresh." }));
        return;
    }
    const seconds = (now.at - before.at) / 1000;
    const delta = (key) => Math.max(0, now[key] - before[key]);
    const requests = delta("requests");
    const rate = requests / seconds;
    state.rates.push(rate);
    if (state.rates.length > SPARK_SAMPLES) state.rates.shift();
    const mean = requests > 0 ? (delta("durationSum") / delta("durationCount")) * 1000 : null;
    const p95 = quantileBound(now, before, 0.95);
    const figure = (label, value, id) => el("div", { class: "figure" }, el("span", { class: "value", id, text: value }), el("span", { class: "label", text: label }));
    replace("traffic-body",
        el("div", { class: "figures" },
            figure("requests / s", fixed(rate, 2), "rate-requests"),
            figure("rows scored / s", fixed(delta("predictions") / seconds, 2), "rate-rows"),
            figure("mean latency (ms)", mean === null ? "— (no requests)" : fixed(mean, 2), "latency-mean"),
            figure("p95 latency (ms, bucket bound)", p95 === null ? "—" : p95 === Infinity ? "> largest bucket" : `≤ ${fixed(p95 * 1000, 1)}`, "latency-p95"),
            figure("4xx / s", fixed(delta("clientErrors") / seconds, 2), "rate-4xx"),
            figure("5xx / s", fixed(delta("serverErrors") / seconds, 2), "rate-5xx")),
        sparkline(state.rates),
        el("p", { class: "note", text: `Over the last ${fixed(seconds, 1)} s; totals since start: ${now.requests} requests, ${now.serverErrors} with 5xx.` }));
}

function sparkline(values) {
    const width = 320, height = 48;
    const top = Math.max(1, ...values);
    const points = values.map((v, i) => `${(i / Math.max(1, SPARK_SAMPLES - 1)) * width},${height - 2 - (v / top) * (height - 4)}`).join(" ");
    return svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `requests per second over the last ${values.length} refreshes, highest ${fixed(top, 2)}` },
        svg("line", { class: "axis", x1: 0, y1: height - 1, x2: width, y2: height - 1 }),
        svg("polyline", { class: "spark", points }));
}

// ---- drift ----------------------------------------------------------------------------------

function showDrift(report) {
    const rows = [
        ...Object.entries(report.numeric).map(([name, f]) => ({ name, figure: "z", value: f.z, threshold: report.thresholds.z, alert: f.alert, n: f.n })),
        ...Object.entries(report.categorical).map(([name, f]) => ({ name, figure: "PSI", value: f.psi, threshold: report.thresholds.psi, alert: f.alert, n: f.n })),
    ];
    const rowHeight = 26, labelWidth = 150, barWidth = 260, textWidth = 210;
    const width = labelWidth + barWidth + textWidth, height = rows.length * rowHeight + 8;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "drift-svg-title" },
        svg("title", { id: "drift-svg-title", text: "Drift per feature against its threshold; bars past the dashed threshold line are hatched and marked ALERT" }),
        svg("defs", {}, svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
            svg("line", { class: "hatch-line", x1: 0, y1: 0, x2: 0, y2: 6 }))));
    rows.forEach((row, i) => {
        const y = 4 + i * rowHeight;
        // Scale each bar to its own threshold: the threshold line sits at 50 % of the bar's room.
        const scale = (barWidth * 0.5) / row.threshold;
        const length = row.value === null ? 0 : Math.min(barWidth, row.value * scale);
        const label = row.value === null ? `${row.figure}: no data yet` :
            `${row.figure} ${fixed(row.value, 3)} / ${row.threshold} ${row.alert ? "▲ ALERT" : "ok"}`;
        chart.append(
            svg("text", { x: 0, y: y + 15, text: row.name }),
            svg("rect", { class: row.alert ? "bar over" : "bar", x: labelWidth, y: y + 3, width: Math.max(length, 1), height: rowHeight - 8 },
                svg("title", { text: `${row.name}: ${label}` })),
            svg("line", { class: "threshold", x1: labelWidth + barWidth * 0.5, y1: y, x2: labelWidth + barWidth * 0.5, y2: y + rowHeight - 2 }),
            svg("text", { x: labelWidth + barWidth + 8, y: y + 15, class: row.alert ? "alert" : null, text: label }));
    });
    replace("drift-body",
        el("p", { id: "drift-summary", class: report.drift ? "alert" : "ok",
            text: report.drift ? `▲ Drift in ${report.alerts.join(", ")}` : "No drift" }),
        el("p", { class: "note", text: `Last ${report.n_predictions} of ${report.window} predictions against ${report.model_name} ${report.model_version}'s training data. The dashed line is each feature's threshold (z ${report.thresholds.z}, PSI ${report.thresholds.psi}).` }),
        chart,
        table(["feature", "figure", { label: "value", num: true }, { label: "threshold", num: true }, "state"],
            rows.map((r) => [r.name, r.figure, fixed(r.value, 3), String(r.threshold), r.value === null ? "no data" : r.alert ? "ALERT" : "ok"])));
}

// ---- version history ------------------------------------------------------------------------

/// The shape and word for what a history line did to the live model.
function marker(entry) {
    if (entry.event === "rollback") return { symbol: "R", word: "rollback" };
    if (entry.promoted) return { symbol: "P", word: entry.event === "seed" ? "seeded" : "promoted" };
    return { symbol: "✕", word: entry.gate_passed === false ? "refused by the gate" : "not promoted" };
}

function historyChart(recorded) {
    // A rollback's line carries no metrics: it brings back a version whose metrics an earlier
    // line recorded, so the chart shows those.
    const known = new Map();
    const entries = recorded.map((e) => {
        if (e.f1 !== null || e.roc_auc !== null) known.set(e.version, e);
        const earlier = known.get(e.version);
        return e.f1 === null && e.roc_auc === null && earlier ? { ...e, f1: earlier.f1, roc_auc: earlier.roc_auc } : e;
    });
    const width = 720, height = 260, left = 40, right = 16, top = 28, bottom = 44;
    const values = entries.flatMap((e) => [e.f1, e.roc_auc]).filter((v) => v !== null);
    const low = values.length ? Math.max(0, Math.floor((Math.min(...values) - 0.05) * 10) / 10) : 0;
    const x = (i) => left + (entries.length === 1 ? (width - left - right) / 2 : (i / (entries.length - 1)) * (width - left - right));
    const y = (v) => top + (1 - (v - low) / (1 - low)) * (height - top - bottom);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "history-svg-title history-svg-desc" },
        svg("title", { id: "history-svg-title", text: "F1 and ROC AUC per history line" }),
        svg("desc", { id: "history-svg-desc", text: "F1: circles on a solid line; ROC AUC: squares on a dashed line. Under each line a letter: P promoted, R rollback, ✕ not promoted. The table below holds the same figures." }));
    for (let t = Math.ceil(low * 10); t <= 10; t += 1) {
        const v = t / 10;
        chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
            svg("text", { x: 4, y: y(v) + 4, text: v.toFixed(1) }));
    }
    for (const [key, cls, shape] of [["f1", "f1", "circle"], ["roc_auc", "auc", "square"]]) {
        const points = entries.map((e, i) => (e[key] === null ? null : [x(i), y(e[key])])).filter(Boolean);
        chart.append(svg("polyline", { class: `series ${cls}`, points: points.map((p) => p.join(",")).join(" ") }));
        entries.forEach((e, i) => {
            if (e[key] === null) return;
            const tip = svg("title", { text: `line ${e.line}, ${e.version}: ${key === "f1" ? "F1" : "ROC AUC"} ${fixed(e[key], 3)}` });
            chart.append(shape === "circle"
                ? svg("circle", { class: cls, cx: x(i), cy: y(e[key]), r: 4 }, tip)
                : svg("rect", { class: cls, x: x(i) - 4, y: y(e[key]) - 4, width: 8, height: 8 }, tip));
        });
    }
    entries.forEach((e, i) => {
        const m = marker(e);
        chart.append(svg("text", { x: x(i) - 4, y: height - bottom + 18, class: m.symbol === "✕" ? "alert" : null, text: m.symbol },
            svg("title", { text: `line ${e.line}: ${e.event} ${e.version}, ${m.word}` })));
    });
    chart.append(
        svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
        svg("circle", { class: "f1", cx: left + 6, cy: 12, r: 4 }), svg("text", { x: left + 14, y: 16, text: "F1 (solid)" }),
        svg("rect", { class: "auc", x: left + 98, y: 8, width: 8, height: 8 }), svg("text", { x: left + 112, y: 16, text: "ROC AUC (dashed)" }),
        svg("text", { x: left + 240, y: 16, text: "P promoted · R rollback · ✕ not promoted" }),
        svg("text", { x: left, y: height - 8, text: `history lines ${entries[0].line} to ${entries[entries.length - 1].line}, oldest left` }));
    return chart;
}

function showHistory(history) {
    if (!history.entries.length) {
        replace("history-body", el("p", { text: `No history yet for ${history.model}.` }));
        return;
    }
    const rows = [...history.entries].reverse().map((e) => {
        const m = marker(e);
        const last = (version) => e === history.entries.filter((h) => h.version === version).pop();
        const marks = [e.version === history.live && last(history.live) ? "● live" : null,
            e.version === state.serving && last(state.serving) ? "◆ serving" : null].filter(Boolean);
        return [String(e.line), el("span", { class: "live-mark", text: marks.join(" ") }), e.event,
            el("span", { class: "mono", text: e.version }), e.at || "—", fixed(e.f1, 3), fixed(e.roc_auc, 3),
            e.gate_passed === null ? "—" : e.gate_passed ? "passed" : "failed", `${m.symbol} ${m.word}`, e.from || ""];
    });
    replace("history-body",
        el("p", { text: `Live in the registry: ${history.live || "(model.wasm is recorded nowhere)"}; ${history.total} history lines${history.total > history.entries.length ? `, the last ${history.entries.length} shown` : ""}.` }),
        el("p", { class: "note", text: "● live: the version model.wasm holds; ◆ serving: the version this server answers with (they differ while a refused candidate sits in model.wasm)." }),
        historyChart(history.entries),
        table([{ label: "line", num: true }, "live", "event", "version", "at", { label: "F1", num: true }, { label: "ROC AUC", num: true }, "gate", "outcome", "from"],
            rows, "Newest first"));
}

// ---- swaps and refusals ---------------------------------------------------------------------

function showEvents(recent) {
    const rows = [...recent.events].reverse().map((e) => e.kind === "swap"
        ? [e.at, "⇄ swap", `${e.from ? `${e.from} → ` : "first load: "}${e.version} (sha256 ${e.sha256.slice(0, 12)}…)`]
        : [e.at, "✕ refused", e.reason]);
    replace("events-body",
        el("p", { text: `${recent.swaps} loads and ${recent.rejections} refused candidates since this server started.` }),
        rows.length ? table(["at", "what", "detail"], rows, "Newest first") : el("p", { text: "Nothing yet." }));
}

// ---- the refresh loop -----------------------------------------------------------------------

function needToken(needed) {
    state.needsToken = needed;
    document.getElementById("token-panel").hidden = !needed && !token();
    document.getElementById("token-message").textContent = needed
        ? (token() ? "The token was refused. Enter the monitoring token again." : "This server guards its monitoring data (MONITORING_TOKEN). Enter the token to see traffic, drift, history and swaps.")
        : "The token is accepted.";
    if (needed) {
        state.lastSample = null;
        state.rates = [];
        state.eventsKey = null;
        for (const id of ["traffic-body", "drift-body", "history-body", "events-body"]) {
            replace(id, el("p", { class: "needs-token", text: "Needs the monitoring token (see above)." }));
        }
    }
}

async function section(id, work) {
    try {
        await work();
        return true;
    } catch (error) {
        if (error instanceof NeedsToken) return false;
        replace(id, el("p", { class: "error", text: error.message }));
        return true;
    }
}

async function refresh() {
    // A slow answer must not stack refreshes up behind it.
    if (state.busy) return;
    state.busy = true;
    try {
        await refreshOnce();
    } finally {
        state.busy = false;
    }
}

async function refreshOnce() {
    const modelAnswer = await fetch("/model", { cache: "no-store" }).then(async (r) => [await r.json(), r.status]).catch((e) => [{ error: e.message }, 0]);
    showModel(...modelAnswer);
    const results = await Promise.all([
        section("traffic-body", async () => showTraffic(await guarded("/metrics", "text"))),
        section("drift-body", async () => showDrift(await guarded("/monitoring/drift"))),
        section("events-body", async () => {
            const recent = await guarded("/monitoring/events");
            showEvents(recent);
            const key = `${recent.swaps}/${recent.rejections}`;
            if (key !== state.eventsKey || performance.now() - state.historyAt > HISTORY_EVERY_MS) {
                state.eventsKey = key;
                state.historyAt = performance.now();
                await section("history-body", async () => showHistory(await guarded("/monitoring/history")));
            }
        }),
    ]);
    needToken(results.includes(false));
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function schedule() {
    clearInterval(state.timer);
    const seconds = Number(document.getElementById("refresh").value);
    if (seconds > 0) state.timer = setInterval(refresh, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
    const select = document.getElementById("refresh");
    const asked = new URLSearchParams(location.search).get("refresh");
    if (asked && [...select.options].some((o) => o.value === asked)) select.value = asked;
    select.addEventListener("change", schedule);
    document.getElementById("predict-form").addEventListener("submit", predict);
    document.getElementById("token-form").addEventListener("submit", (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
        document.getElementById("token").value = "";
        state.eventsKey = null;
        refresh();
    });
    document.getElementById("token-forget").addEventListener("click", () => {
        sessionStorage.removeItem(TOKEN_KEY);
        state.eventsKey = null;
        refresh();
    });
    refresh();
    schedule();
});
