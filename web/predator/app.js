// The demo page: the flock, the predator and its policy (the network, pursuit or still), the
// model from ?model=URL, a file or a drop (or window.TRANSFORMER_PARAMS from an old page's script
// tag), and live figures. One simulation step per frame.
//
// URL parameters: model, seed, boids, policy, width and height (the simulated canvas; default:
// the window), frames (stop after this many, for tests and benchmarks).
// `window.ludus` exposes the run to tests: the state, frames, caught, policy, timings.

import { demoState, encode, pursuit, step } from "./sim.js";
import { loadTransformer, netAction } from "./transformer.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const canvas = $("world");
const ctx = canvas.getContext("2d");
const ui = { policy: $("policy"), boids: $("boids"), seed: $("seed"), message: $("message"), figures: $("figures") };

const run = {
  state: null,
  net: null,
  modelName: "",
  frames: 0,
  caught: 0,
  boidsAtStart: 0,
  stopAt: params.has("frames") ? Number(params.get("frames")) : Infinity,
  frameMs: [],
  inferenceMs: [],
  errors: [],
};
window.ludus = run;

function say(text, isError = false) {
  ui.message.textContent = text;
  ui.message.className = isError ? "error" : "";
  if (isError) run.errors.push(text);
}

function size() {
  const width = Number(params.get("width")) || window.innerWidth;
  const height = Number(params.get("height")) || window.innerHeight;
  return [width, height];
}

function reset() {
  const [width, height] = size();
  const seed = Number(ui.seed.value) >>> 0;
  run.state = demoState(width, height, Number(ui.boids.value), seed);
  run.frames = 0;
  run.caught = 0;
  run.boidsAtStart = run.state.boids.length;
  run.frameMs = [];
  run.inferenceMs = [];
  $("boids-value").textContent = ui.boids.value;
}

/** Uses a browser weight object; a bad one is an error on the page (no silent fallback). */
function useModel(params, name) {
  try {
    run.net = loadTransformer(params);
    run.modelName = name;
    ui.policy.value = "network";
    say(`network: ${name} (${run.net.d}/${run.net.heads}/${run.net.layers.length}/${run.net.f})`);
  } catch (e) {
    run.net = null;
    say(`${name}: ${e.message}`, true);
  }
}

function parseModel(text, name) {
  const body = text.trim();
  const prefix = "window.TRANSFORMER_PARAMS =";
  const json = body.startsWith(prefix) ? body.slice(prefix.length).trim().replace(/;$/, "") : body;
  try {
    return JSON.parse(json);
  } catch (e) {
    say(`${name}: not a weight file (${e.message})`, true);
    return null;
  }
}

async function loadFromFile(file) {
  const params = parseModel(await file.text(), file.name);
  if (params) useModel(params, file.name);
}

async function loadFromUrl(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const params = parseModel(await response.text(), url);
    if (params) useModel(params, url);
  } catch (e) {
    say(`${url}: ${e.message}`, true);
  }
}

function act(obs) {
  const policy = ui.policy.value;
  if (policy === "still") return [0, 0];
  if (policy === "network" && run.net) {
    const t = performance.now();
    const action = netAction(run.net, obs);
    run.inferenceMs.push(performance.now() - t);
    return action;
  }
  return pursuit(obs);
}

function draw() {
  const { state } = run;
  const scale = Math.min(canvas.width / state.width, canvas.height / state.height);
  ctx.fillStyle = "#0d1117";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.save();
  ctx.scale(scale, scale);
  ctx.strokeStyle = "#30363d";
  ctx.strokeRect(0, 0, state.width, state.height);
  ctx.fillStyle = "#58a6ff";
  for (const b of state.boids) {
    const angle = Math.atan2(b.vel.y, b.vel.x);
    ctx.beginPath();
    ctx.moveTo(b.pos.x + Math.cos(angle) * 7, b.pos.y + Math.sin(angle) * 7);
    ctx.lineTo(b.pos.x + Math.cos(angle + 2.5) * 5, b.pos.y + Math.sin(angle + 2.5) * 5);
    ctx.lineTo(b.pos.x + Math.cos(angle - 2.5) * 5, b.pos.y + Math.sin(angle - 2.5) * 5);
    ctx.fill();
  }
  const p = state.predator;
  ctx.fillStyle = "#f85149";
  ctx.beginPath();
  ctx.arc(p.pos.x, p.pos.y, 9, 0, 2 * Math.PI);
  ctx.fill();
  ctx.restore();
}

const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : 0);

function showFigures() {
  const rate = run.boidsAtStart ? run.caught / run.boidsAtStart : 0;
  const policy = ui.policy.value === "network" && !run.net ? "pursuit (no model)" : ui.policy.value;
  ui.figures.innerHTML =
    `policy ${policy}<br>frame ${run.frames}<br>caught ${run.caught} of ${run.boidsAtStart} (catch rate ${(100 * rate).toFixed(1)}%)<br>` +
    `frame time ${median(run.frameMs.slice(-120)).toFixed(2)} ms, inference ${median(run.inferenceMs.slice(-120)).toFixed(2)} ms`;
}

function frame() {
  if (run.frames < run.stopAt && run.state.boids.length > 0) {
    const started = performance.now();
    const action = act(encode(run.state));
    run.caught += step(run.state, action).length;
    run.frames += 1;
    draw();
    run.frameMs.push(performance.now() - started);
  }
  showFigures();
  requestAnimationFrame(frame);
}

function resize() {
  canvas.width = window.innerWidth;
  canvas.height = window.innerHeight;
}

async function start() {
  ui.seed.value = params.get("seed") ?? ui.seed.value;
  ui.boids.value = params.get("boids") ?? ui.boids.value;
  if (params.has("policy")) ui.policy.value = params.get("policy");
  ui.boids.addEventListener("input", reset);
  $("reset").addEventListener("click", reset);
  ui.seed.addEventListener("change", reset);
  ui.policy.addEventListener("change", () => {
    if (ui.policy.value === "network" && !run.net) say("no model loaded: the predator uses pursuit; load one with ?model=URL, the file picker or a drop");
  });
  $("file").addEventListener("change", (e) => e.target.files[0] && loadFromFile(e.target.files[0]));
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    document.body.classList.add("dragging");
  });
  window.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    if (e.dataTransfer.files[0]) loadFromFile(e.dataTransfer.files[0]);
  });
  window.addEventListener("resize", resize);
  resize();
  if (params.has("model")) await loadFromUrl(params.get("model"));
  else if (window.TRANSFORMER_PARAMS) useModel(window.TRANSFORMER_PARAMS, "predator_model.js");
  else say("no model loaded: the predator uses pursuit; load one with ?model=URL, the file picker or a drop");
  reset();
  requestAnimationFrame(frame);
}

start();
