// The predator's page: fields side by side, each the same seed and flock with its own policy
// (by default the shipped network, pursuit and still), a live caught count and chart in each,
// "what the network sees", and an honest banner when the network cannot be loaded.
//
// URL parameters (all optional): model (a weight file's URL; default models/hunter.json) and meta
// (its description; default models/hunter.meta.json for the default model, none otherwise),
// fields (policies, comma-separated; default network,pursuit,still) or policy (one field), seed,
// boids, width and height (the simulated canvas; default 960 x 640 whatever the window), frames
// (the round's length; default 3000), speed (frames per screen refresh) and attention=1.
// `window.ludus` exposes the run to tests: the fields, the network, timings, errors.

import { drawChart } from "./chart.js";
import { DEFAULT_SETUP, Field, POLICIES } from "./field.js";
import { DEFAULT_META, DEFAULT_MODEL, ModelError, describe, fromParams, fromUrl, loadMeta, parseWeights } from "./model.js";
import { COLORS, drawField, seenRange, viewSize } from "./render.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const ui = {
  fields: $("fields"),
  guide: $("guide"), // kept here: rebuilding the fields takes it out of the page
  hunter: $("hunter"),
  about: $("about"),
  status: $("status"),
  banner: $("banner"),
  bannerText: $("banner-text"),
  attention: $("attention"),
  layout: $("layout"),
  boids: $("boids"),
  seed: $("seed"),
  speed: $("speed"),
  figures: $("figures"),
  panel: $("panel"),
  panelToggle: $("panel-toggle"),
};

const number = (name, fallback) => (params.has(name) && Number.isFinite(Number(params.get(name))) ? Number(params.get(name)) : fallback);
const positive = (name, fallback) => (number(name, 0) > 0 ? number(name, 0) : fallback);

const run = {
  setup: {
    seed: number("seed", DEFAULT_SETUP.seed) >>> 0,
    boids: Math.max(1, Math.min(200, number("boids", DEFAULT_SETUP.boids))),
    width: positive("width", DEFAULT_SETUP.width),
    height: positive("height", DEFAULT_SETUP.height),
    frames: positive("frames", DEFAULT_SETUP.frames),
  },
  fields: [],
  views: [],
  net: null,
  model: null, // {net, file}
  meta: null,
  look: params.get("attention") === "1",
  speed: Math.max(1, Math.round(number("speed", 1))),
  frameMs: [],
  errors: [],
  get stopAt() {
    return this.setup.frames;
  },
  get frames() {
    return Math.max(0, ...this.fields.map((f) => f.frames));
  },
  get done() {
    return this.fields.every((f) => f.done);
  },
  /** The first network field's inference times (ms per frame). */
  get inferenceMs() {
    return this.fields.find((f) => f.policy === "network")?.inferenceMs ?? [];
  },
  // The first field, as the one-field page had them.
  get state() {
    return this.fields[0]?.state;
  },
  get caught() {
    return this.fields[0]?.caught;
  },
};
window.ludus = run;

// ---- the banner: what went wrong, naming the file and the field ------------------------------

function banner(text, warning = false) {
  run.errors.push(text);
  ui.bannerText.textContent = text;
  ui.banner.classList.toggle("warning", warning);
  ui.banner.hidden = false;
}

function fail(error) {
  const network = run.fields.some((f) => f.wanted === "network");
  const instead = network ? " The field meant for it plays pursuit instead (its menu says so)." : "";
  banner(`The network could not be loaded: ${error instanceof ModelError ? error.message : String(error)}.${instead}`);
}

function clearBanner() {
  ui.banner.hidden = true;
  ui.bannerText.textContent = "";
}

// ---- fields and their layout -----------------------------------------------------------------

function wantedPolicies() {
  const list = params.has("fields") ? params.get("fields").split(",") : params.has("policy") ? [params.get("policy")] : ["network", "pursuit", "still"];
  const known = list.map((p) => p.trim()).filter((p) => POLICIES.includes(p));
  return known.length > 0 ? known : ["network", "pursuit", "still"];
}

function buildFields(policies) {
  const template = $("field-template");
  ui.fields.replaceChildren();
  run.fields = policies.map((p) => new Field(p, run.setup));
  run.views = run.fields.map((field) => {
    const el = template.content.firstElementChild.cloneNode(true);
    const select = el.querySelector("select");
    for (const p of POLICIES) select.append(new Option(p, p));
    select.addEventListener("change", () => {
      field.wanted = select.value;
      restart();
    });
    const world = el.querySelector("canvas.world");
    const chart = el.querySelector("canvas.chart");
    ui.fields.append(el);
    return { el, select, count: el.querySelector(".count"), world, chart, ctx: world.getContext("2d"), chartCtx: chart.getContext("2d"), scale: 1, shown: "" };
  });
  showPolicies();
  layout();
}

/** Each field's menu shows the policy that plays; "network" is greyed out without a network. */
function showPolicies() {
  run.fields.forEach((field, i) => {
    field.play(run.net !== null);
    const { select, el } = run.views[i];
    const option = [...select.options].find((o) => o.value === "network");
    option.disabled = run.net === null;
    option.textContent = run.net === null ? "network (not loaded)" : "network";
    select.value = field.policy;
    el.dataset.policy = field.policy;
    el.style.setProperty("--policy", COLORS.policy[field.policy]);
  });
}

/** The grid of fields with the largest scale that fits the window. */
function layout() {
  const n = run.fields.length;
  const box = ui.fields.getBoundingClientRect();
  const [vw, vh] = viewSize(run.setup);
  const gap = 8;
  const caption = 38;
  let best = { scale: 0, cols: 1 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const scale = Math.min((box.width - gap * (cols + 1)) / cols / vw, ((box.height - gap * (rows + 1)) / rows - caption) / vh);
    if (scale > best.scale) best = { scale, cols };
  }
  const scale = Math.max(0.05, best.scale);
  const dpr = window.devicePixelRatio || 1;
  const width = Math.floor(vw * scale);
  const height = Math.floor(vh * scale);
  ui.fields.style.gridTemplateColumns = `repeat(${best.cols}, ${width}px)`;
  // The guide fills the grid's first empty cell, if there is one.
  const { guide } = ui;
  guide.hidden = n % best.cols === 0;
  guide.style.maxHeight = `${height + caption}px`;
  if (!guide.hidden) ui.fields.append(guide);
  for (const view of run.views) {
    view.world.style.width = `${width}px`;
    view.world.style.height = `${height}px`;
    view.world.width = Math.round(width * dpr);
    view.world.height = Math.round(height * dpr);
    view.scale = scale * dpr;
    const chartWidth = Math.max(60, Math.min(240, width - 280));
    view.chart.style.width = `${chartWidth}px`;
    view.chart.width = chartWidth;
  }
  draw();
}

function restart() {
  ui.boids.value = run.setup.boids;
  ui.seed.value = run.setup.seed;
  $("boids-value").textContent = run.setup.boids;
  for (const field of run.fields) field.reset(run.setup);
  showPolicies();
  if (run.look) for (const field of run.fields) field.observe(run.net);
  run.frameMs = [];
  draw();
}

// ---- the loop --------------------------------------------------------------------------------

function draw() {
  run.fields.forEach((field, i) => {
    const view = run.views[i];
    drawField(view.ctx, field, view.scale, run.look);
    drawChart(view.chartCtx, view.chart.width, view.chart.height, run.fields, field, COLORS.policy);
  });
}

const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : 0);

function showText() {
  run.fields.forEach((field, i) => {
    const view = run.views[i];
    const cleared = field.state.boids.length === 0 ? ` · cleared in ${field.frames} frames` : "";
    let seen = "";
    if (run.look && field.policy === "network" && field.seenFresh && (field.frames % 10 === 0 || run.done)) {
      const [least, most] = seenRange(field).map((w) => (100 * w).toFixed(1));
      seen = `<br><small>attention per boid ${least}% to ${most}%</small>`;
    } else if (run.look && field.policy === "network") seen = view.seen ?? "";
    view.seen = seen;
    const text = `${field.caught}|${cleared}|${seen}`;
    if (text === view.shown) return;
    view.shown = text;
    view.count.innerHTML = `<b>${field.caught}</b> of ${field.boidsAtStart} caught${cleared}${seen}`;
  });
  if (run.done) {
    const text = `round over at frame ${run.frames}`;
    if (ui.status.dataset.text !== text) {
      ui.status.dataset.text = text;
      ui.status.textContent = `${text} `;
      const again = document.createElement("button");
      again.textContent = "next seed";
      again.addEventListener("click", nextSeed);
      ui.status.append(again);
    }
  } else if (run.frames % 5 === 0 || ui.status.dataset.text) {
    ui.status.dataset.text = "";
    ui.status.textContent = `frame ${run.frames} / ${run.setup.frames}`;
  }
  if (run.frames % 30 === 0) {
    const inference = median(run.inferenceMs.slice(-120));
    ui.figures.textContent = `frame time ${median(run.frameMs.slice(-120)).toFixed(2)} ms (all fields), network ${inference.toFixed(2)} ms`;
  }
}

function frame() {
  if (!run.done) {
    const started = performance.now();
    for (let k = 0; k < run.speed && !run.done; k++) {
      for (const field of run.fields) if (!field.done) field.advance(run.net, run.look);
    }
    draw();
    run.frameMs.push(performance.now() - started);
  }
  showText();
  requestAnimationFrame(frame);
}

// ---- the network -----------------------------------------------------------------------------

function showHunter() {
  [ui.hunter.textContent, ui.hunter.title] = describe(run.model, run.meta);
  ui.hunter.classList.toggle("missing", run.model === null);
  ui.about.hidden = !(run.model && run.meta?.aboutUrl);
  if (!ui.about.hidden) ui.about.href = run.meta.aboutUrl;
}

/** Plays `model` (or nothing, after `error`) in the fields that want the network, from frame 0. */
function useModel(model, meta, error = null) {
  run.model = model;
  run.net = model ? model.net : null;
  run.meta = model ? meta : null;
  if (error) fail(error);
  else clearBanner();
  showHunter();
  restart();
}

/** The network from ?model=URL, else an old page's script tag, else the shipped one; its
 *  description from ?meta=URL, or for the shipped network the file beside it. */
async function loadFirst() {
  const old = !params.has("model") && window.TRANSFORMER_PARAMS !== undefined;
  const url = params.get("model") ?? DEFAULT_MODEL;
  const metaUrl = params.has("model") ? params.get("meta") : old ? null : DEFAULT_META;
  let model = null;
  try {
    model = old ? fromParams(window.TRANSFORMER_PARAMS, "predator_model.js") : await fromUrl(url);
  } catch (e) {
    useModel(null, null, e);
    return;
  }
  let meta = null;
  let metaError = null;
  if (metaUrl) {
    try {
      meta = await loadMeta(metaUrl);
    } catch (e) {
      metaError = e;
    }
  }
  useModel(model, meta);
  // Without its description the network still plays; the page says what it cannot show.
  if (metaError) banner(`${metaError.message}: the network plays, but the page cannot give its name or catch rate.`, true);
}

async function loadFile(file) {
  try {
    useModel(fromParams(parseWeights(await file.text(), file.name), file.name), null);
  } catch (e) {
    useModel(null, null, e);
  }
}

// ---- controls --------------------------------------------------------------------------------

function nextSeed() {
  run.setup.seed = (run.setup.seed + 1) >>> 0;
  restart();
}

function controls() {
  ui.attention.checked = run.look;
  ui.attention.addEventListener("change", () => {
    run.look = ui.attention.checked;
    for (const view of run.views) view.shown = "";
    if (run.look) for (const field of run.fields) if (!field.seenFresh) field.observe(run.net);
    draw();
  });
  ui.panelToggle.addEventListener("click", () => {
    ui.panel.hidden = !ui.panel.hidden;
    ui.panel.style.top = `${$("bar").getBoundingClientRect().bottom + 4}px`; // below the header, however it wraps
    ui.panelToggle.setAttribute("aria-expanded", String(!ui.panel.hidden));
    ui.panelToggle.textContent = ui.panel.hidden ? "settings ▸" : "settings ▾";
  });
  $("banner-close").addEventListener("click", () => (ui.banner.hidden = true));
  const policies = run.fields.map((f) => f.wanted).join(",");
  if (![...ui.layout.options].some((o) => o.value === policies)) ui.layout.append(new Option(policies.replaceAll(",", " · "), policies));
  ui.layout.value = policies;
  ui.layout.addEventListener("change", () => {
    buildFields(ui.layout.value.split(","));
    restart();
  });
  if (![...ui.speed.options].some((o) => Number(o.value) === run.speed)) ui.speed.append(new Option(`${run.speed}×`, String(run.speed)));
  ui.speed.value = String(run.speed);
  ui.speed.addEventListener("change", () => (run.speed = Number(ui.speed.value)));
  ui.boids.addEventListener("input", () => {
    run.setup.boids = Number(ui.boids.value);
    restart();
  });
  ui.seed.addEventListener("change", () => {
    run.setup.seed = Number(ui.seed.value) >>> 0;
    restart();
  });
  $("next-seed").addEventListener("click", nextSeed);
  $("reset").addEventListener("click", restart);
  $("file").addEventListener("change", (e) => e.target.files[0] && loadFile(e.target.files[0]));
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    document.body.classList.add("dragging");
  });
  window.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
  });
  // The fields' box changes with the window and with the banner.
  new ResizeObserver(layout).observe(ui.fields);
}

async function start() {
  buildFields(wantedPolicies());
  controls();
  await loadFirst();
  requestAnimationFrame(frame);
}

start();
