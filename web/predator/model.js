// The page's network: from a URL (by default the hunter shipped in models/), a file or a drop,
// or `window.TRANSFORMER_PARAMS` (an old page's script tag), with its description (name, catch
// rate, the command that made it) from a small JSON beside it, so that swapping the shipped
// model is swapping two files. A file that cannot be used is an error that names the file and,
// for a weight file with a bad field, the field: the page shows it and never falls back silently.

import { loadTransformer } from "./transformer.js";

export const DEFAULT_MODEL = "models/hunter.json";
export const DEFAULT_META = "models/hunter.meta.json";

/** A network that could not be loaded: `file` and the reason (naming the field where one is bad). */
export class ModelError extends Error {
  constructor(file, message) {
    super(`${file}: ${message}`);
    this.file = file;
    this.reason = message;
  }
}

/** The weight object from a browser weight file or its `.js` wrapper. */
export function parseWeights(text, file) {
  const body = text.trim();
  const prefix = "window.TRANSFORMER_PARAMS =";
  const json = body.startsWith(prefix) ? body.slice(prefix.length).trim().replace(/;$/, "") : body;
  try {
    return JSON.parse(json);
  } catch (e) {
    throw new ModelError(file, `not a weight file (${e.message})`);
  }
}

/** {net, file} from a weight object; throws a ModelError. */
export function fromParams(params, file) {
  try {
    return { net: loadTransformer(params), file };
  } catch (e) {
    throw new ModelError(file, e.message);
  }
}

async function fetchText(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new ModelError(url, e.message);
  }
  if (!response.ok) throw new ModelError(url, `HTTP ${response.status} (the file is not there)`);
  return response.text();
}

/** {net, file} from a URL; throws a ModelError. */
export async function fromUrl(url) {
  return fromParams(parseWeights(await fetchText(url), url), url);
}

/** The description beside a model: {name, catch_rate_default_protocol (null: not measured),
 *  command, about (its provenance page), ...}; throws a ModelError naming the field when one is
 *  missing or of the wrong kind. */
export async function loadMeta(url) {
  let meta;
  try {
    meta = JSON.parse(await fetchText(url));
  } catch (e) {
    throw e instanceof ModelError ? e : new ModelError(url, `not JSON (${e.message})`);
  }
  if (meta === null || typeof meta !== "object") throw new ModelError(url, "must be a JSON object");
  if (typeof meta.name !== "string" || meta.name === "") throw new ModelError(url, "field 'name' must be a non-empty string");
  const rate = meta.catch_rate_default_protocol;
  if (rate !== null && (typeof rate !== "number" || !(rate >= 0 && rate <= 1))) {
    throw new ModelError(url, "field 'catch_rate_default_protocol' must be a number in [0, 1] or null");
  }
  // Links in the description (its provenance page) are relative to the description's own URL.
  if (typeof meta.about === "string") meta.aboutUrl = new URL(meta.about, new URL(url, location.href)).href;
  return meta;
}

const percent = (x) => `${(100 * x).toFixed(1)}%`;

/** The header's words for the network that plays: [text, tooltip]. */
export function describe(model, meta) {
  if (!model) return ["no network: pursuit plays in its place", ""];
  const { net } = model;
  const size = `a ${net.d}/${net.heads}/${net.layers.length}/${net.f} transformer (d_model/heads/layers/ffn)`;
  if (!meta) return [`${model.file}`, size];
  const rate = meta.catch_rate_default_protocol;
  const episodes = meta.episodes ? ` over ${meta.episodes} episodes` : "";
  const tooltip = `${size}; catch rate on the default protocol${episodes}` + (meta.command ? `; made by: ${meta.command}` : "");
  return [rate === null ? `${meta.name}, catch rate not measured` : `${meta.name}: catches ${percent(rate)} of a flock`, tooltip];
}
