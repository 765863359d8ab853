// Steward's built-in charts: polls ui/series every few seconds and draws each chart as
// plain SVG (no third-party code, nothing fetched from elsewhere: edge boxes run offline).
// A token, when the API needs one, comes from `#token=...` in the address (a fragment is
// never sent to the server) or the form, and is kept in this tab's sessionStorage.
"use strict";

const TOKEN_KEY = "steward.token";
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#8c564b",
                 "#e377c2", "#bcbd22", "#637939", "#393b79"];
const W = 540, H = 200, LEFT = 52, RIGHT = 10, TOP = 10, BOTTOM = 24;
const SVG = "http://www.w3.org/2000/svg";

function takeTokenFromAddress() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "-";
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01 || a === 0) return v.toFixed(2);
  return v.toExponential(1);
}

function latest(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function bounds(series) {
  let lo = 0, hi = 0;
  for (const s of series) for (const v of s.values) if (v !== null) {
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  if (hi === lo) hi = lo + 1;
  return [lo, hi + (hi - lo) * 0.08];
}

function frame(svg, lo, hi) {
  const y = v => TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.appendChild(el("line", {class: "grid", x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v)}));
    svg.appendChild(el("text", {x: LEFT - 4, y: y(v) + 4, "text-anchor": "end"}, fmt(v)));
  }
  svg.appendChild(el("line", {class: "axis", x1: LEFT, x2: LEFT, y1: TOP, y2: H - BOTTOM}));
  return y;
}

function drawLines(svg, chart, times) {
  const [lo, hi] = bounds(chart.series);
  const y = frame(svg, lo, hi);
  const t0 = times[0], span = times[times.length - 1] - t0;
  // one sample so far: it is "now", at the right edge
  const x = t => span > 0 ? LEFT + (W - LEFT - RIGHT) * (t - t0) / span : W - RIGHT;
  const ago = span >= 120 ? `-${Math.round(span / 60)} min` : `-${span.toFixed(0)} s`;
  if (span > 0) svg.appendChild(el("text", {x: LEFT, y: H - 6}, ago));
  svg.appendChild(el("text", {x: W - RIGHT, y: H - 6, "text-anchor": "end"}, "now"));
  chart.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    let d = "", pen = "M";
    s.values.forEach((v, j) => {
      if (v === null) { pen = "M"; return; }
      d += `${pen}${x(times[j]).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
      const alone = (j === 0 || s.values[j - 1] === null) &&
                    (j === s.values.length - 1 || s.values[j + 1] === null);
      if (alone) {  // a point with no neighbour draws no line: show it as a dot
        svg.appendChild(el("circle", {cx: x(times[j]), cy: y(v), r: 3, fill: colour}));
      }
    });
    svg.appendChild(el("path", {class: "series", "data-series": s.name, d: d.trim(),
      fill: "none", stroke: colour, "stroke-width": 2.5, "stroke-linejoin": "round"}));
  });
}

function drawBars(svg, chart) {
  const values = chart.series.map(s => latest(s.values) ?? 0);
  const [lo, hi] = bounds([{values}]);
  const y = frame(svg, lo, hi);
  const slot = (W - LEFT - RIGHT) / values.length;
  values.forEach((v, i) => {
    const top = Math.min(y(v), y(0));
    svg.appendChild(el("rect", {class: "series", "data-series": chart.series[i].name,
      x: LEFT + slot * i + slot * 0.15, width: slot * 0.7, y: top,
      height: Math.max(Math.abs(y(0) - y(v)), 1), fill: COLOURS[i % COLOURS.length]}));
    svg.appendChild(el("text", {x: LEFT + slot * (i + 0.5), y: H - 6, "text-anchor": "middle"},
                       chart.series[i].name));
  });
}

function render(chart, times) {
  const section = document.createElement("section");
  section.className = "chart";
  section.dataset.chart = chart.id;
  const more = chart.hidden ? ` (+${chart.hidden} more series)` : "";
  section.innerHTML = `<h2></h2><div class="sub"></div>`;
  section.querySelector("h2").textContent = chart.title;
  section.querySelector(".sub").textContent =
    `${chart.unit} - as in Grafana: ${chart.dashboard} - ${chart.metrics.join(", ")}${more}`;
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
                         "aria-label": chart.title});
  if (!chart.series.length || times.length < 1) {
    frame(svg, 0, 1);
    svg.appendChild(el("text", {class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle"},
                       "no data yet"));
  } else if (chart.kind === "bar") {
    drawBars(svg, chart);
  } else {
    drawLines(svg, chart, times);
  }
  section.appendChild(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  chart.series.forEach((s, i) => {
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${COLOURS[i % COLOURS.length]}"></i>`;
    item.append(`${s.name}: ${fmt(latest(s.values))}`);
    legend.appendChild(item);
  });
  section.appendChild(legend);
  return section;
}

function show(id, text) {
  const node = document.getElementById(id);
  node.style.display = text === null ? "none" : "block";
  if (id === "banner" && text !== null) node.textContent = text;
}

let timer = null;

function schedule(seconds) {
  clearTimeout(timer);
  timer = setTimeout(refresh, seconds * 1000);
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? {Authorization: `Bearer ${token}`} : {};
  let wait = 5;
  try {
    const resp = await fetch("ui/series", {headers, cache: "no-store"});
    if (resp.status === 401 || resp.status === 403) {
      show("login", "");
      show("banner", null);
      document.getElementById("status").textContent = "waiting for a token";
      return schedule(wait);
    }
    if (!resp.ok) throw new Error(`GET ui/series answered ${resp.status}`);
    const body = await resp.json();
    wait = Math.max(body.interval_s, 1);
    show("login", null);
    show("banner", null);
    document.getElementById("charts").replaceChildren(
      ...body.charts.map(c => render(c, body.times)));
    const failed = body.failed_samples ? `, ${body.failed_samples} failed samples` : "";
    document.getElementById("status").textContent =
      `updated ${new Date().toLocaleTimeString()} - ${body.times.length} ` +
      `sample${body.times.length === 1 ? "" : "s"}, ` +
      `one every ${body.interval_s} s${failed}`;
  } catch (err) {
    show("banner", `Cannot load the charts: ${err.message}`);
  }
  schedule(wait);
}

document.getElementById("login").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  refresh();
});
takeTokenFromAddress();
refresh();
