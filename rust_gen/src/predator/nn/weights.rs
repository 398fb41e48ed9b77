//! Loading the predator transformer's weights: the browser file (`window.TRANSFORMER_PARAMS`)
//! or our own (`ludus.weights/1`), every error naming the file and the field; and a browser
//! file with random weights for benchmarks and tests.

use super::forward::{Block, Transformer};
use super::simd::Build;
use serde_json::Value;
use std::path::Path;

pub const OUR_FORMAT: &str = "ludus.weights/1";

/// Reads named fields of a weights file, naming the file and the field in every error.
struct Fields<'a> {
    source: &'a str,
}

impl Fields<'_> {
    fn get<'v>(&self, obj: &'v Value, path: &str) -> Result<&'v Value, String> {
        let mut at = obj;
        for part in path.split('.') {
            at = match part.parse::<usize>() {
                Ok(i) => at.get(i),
                Err(_) => at.get(part),
            }
            .ok_or_else(|| format!("{}: field '{path}' is missing", self.source))?;
        }
        Ok(at)
    }

    fn number(&self, obj: &Value, path: &str) -> Result<usize, String> {
        self.get(obj, path)?
            .as_u64()
            .filter(|&n| n > 0 && n <= 4096)
            .map(|n| n as usize)
            .ok_or_else(|| {
                format!(
                    "{}: field '{path}' must be a whole number in 1..=4096",
                    self.source
                )
            })
    }

    /// A vector of `n` finite numbers, or a matrix of `rows` x `cols` written as nested lists
    /// (the browser file) or flat with a "shape" (our file).
    fn floats(&self, obj: &Value, path: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let field = self.get(obj, path)?;
        let (data, got): (Vec<&Value>, Vec<usize>) = match field {
            Value::Object(map) => {
                let got: Vec<usize> = map
                    .get("shape")
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_u64)
                            .map(|n| n as usize)
                            .collect()
                    })
                    .unwrap_or_default();
                let data = map
                    .get("data")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                (data, got)
            }
            Value::Array(rows) if shape.len() == 2 => {
                let mut data = Vec::new();
                for row in rows {
                    let row = row.as_array().ok_or_else(|| {
                        format!(
                            "{}: field '{path}' must be a list of {} lists",
                            self.source, shape[0]
                        )
                    })?;
                    if row.len() != shape[1] {
                        return Err(format!(
                            "{}: field '{path}' has a row of {} numbers, expected {}",
                            self.source,
                            row.len(),
                            shape[1]
                        ));
                    }
                    data.extend(row.iter());
                }
                (data, vec![rows.len(), shape[1]])
            }
            Value::Array(items) => (items.iter().collect(), vec![items.len()]),
            _ => {
                return Err(format!(
                    "{}: field '{path}' must be a list of numbers",
                    self.source
                ))
            }
        };
        if got != shape {
            return Err(format!(
                "{}: field '{path}' has shape {got:?}, expected {shape:?}",
                self.source
            ));
        }
        data.iter()
            .enumerate()
            .map(|(i, v)| match v.as_f64() {
                Some(x) if x.is_finite() && (x as f32).is_finite() => Ok(x as f32),
                _ => Err(format!(
                    "{}: field '{path}' holds a non-finite or non-number value at index {i}",
                    self.source
                )),
            })
            .collect()
    }
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// [rows][cols] row-major to [cols][rows].
fn transpose(m: Vec<f32>, rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

impl Transformer {
    pub fn load(path: &Path) -> Result<Transformer, String> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{source}: {e}"))?;
        // The old pages' file: `window.TRANSFORMER_PARAMS = {...};`
        let json = text
            .trim()
            .strip_prefix("window.TRANSFORMER_PARAMS =")
            .map(|t| t.trim().trim_end_matches(';'))
            .unwrap_or(&text);
        let obj: Value =
            serde_json::from_str(json).map_err(|e| format!("{source}: not JSON: {e}"))?;
        Transformer::from_value(&obj, &source)
    }

    /// Our file (`format` = ludus.weights/1, task predator) or the browser file.
    pub fn from_value(obj: &Value, source: &str) -> Result<Transformer, String> {
        let f = Fields { source };
        let ours = obj.get("format").is_some();
        if ours
            && (obj["format"] != OUR_FORMAT
                || obj.get("task").and_then(Value::as_str) != Some("predator"))
        {
            return Err(format!(
                "{source}: field 'format'/'task' must be {OUR_FORMAT:?} and \"predator\""
            ));
        }
        let arch = if ours {
            f.get(obj, "architecture")?
        } else {
            obj
        };
        let tensors = if ours { f.get(obj, "tensors")? } else { obj };
        let (d, heads, n_layers, ff) = (
            f.number(arch, "d_model")?,
            f.number(arch, "n_heads")?,
            f.number(arch, "n_layers")?,
            f.number(arch, "ffn_hidden")?,
        );
        if d % heads != 0 {
            return Err(format!(
                "{source}: field 'n_heads' ({heads}) must divide d_model ({d})"
            ));
        }
        let v = |name: &str, shape: &[usize]| f.floats(tensors, name, shape);
        let typed = |name: &str| v(&format!("type_embeddings.{name}"), &[d]);
        // Our file keeps the projection biases; the browser file has them folded into the types.
        let bias = |name: &str| -> Result<Vec<f32>, String> {
            if ours {
                v(&format!("{name}_bias"), &[d])
            } else {
                Ok(vec![0.0; d])
            }
        };
        let scale = 1.0 / ((d / heads) as f32).sqrt();
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let l = |name: &str, shape: &[usize]| v(&format!("layers.{i}.{name}"), shape);
            let (qkv_w, qkv_b) = (l("qkv_weight", &[3 * d, d])?, l("qkv_bias", &[3 * d])?);
            blocks.push(Block {
                ln: (l("ln_scale", &[d])?, l("ln_bias", &[d])?),
                q_wb: qkv_w[..d * d]
                    .chunks_exact(d)
                    .zip(&qkv_b[..d])
                    .flat_map(|(row, b)| row.iter().chain([b]).map(|w| w * scale))
                    .collect(),
                k_w: qkv_w[d * d..2 * d * d].to_vec(),
                v_w: transpose(qkv_w[2 * d * d..].to_vec(), d, d),
                v_b: qkv_b[2 * d..].to_vec(),
                out_w: transpose(l("attn_out_weight", &[d, d])?, d, d),
                out_b: l("attn_out_bias", &[d])?,
                ffn_ln: (l("ffn_ln_scale", &[d])?, l("ffn_ln_bias", &[d])?),
                gate_w: transpose(l("ffn_gate_weight", &[ff, d])?, ff, d),
                gate_b: l("ffn_gate_bias", &[ff])?,
                up_w: transpose(l("ffn_up_weight", &[ff, d])?, ff, d),
                up_b: l("ffn_up_bias", &[ff])?,
                down_w: transpose(l("ffn_down_weight", &[d, ff])?, d, ff),
                down_b: l("ffn_down_bias", &[d])?,
            });
        }
        if let Some(extra) = tensors
            .get("layers")
            .and_then(Value::as_array)
            .filter(|l| l.len() != n_layers)
        {
            return Err(format!(
                "{source}: field 'layers' holds {} layers, n_layers says {n_layers}",
                extra.len()
            ));
        }
        Ok(Transformer {
            d_model: d,
            n_heads: heads,
            ffn_hidden: ff,
            build: Build::detect(),
            cls: add(&v("cls_embedding", &[d])?, &typed("cls")?),
            ctx: (
                transpose(v("ctx_projection", &[d, 2])?, d, 2),
                add(&bias("ctx_projection")?, &typed("ctx")?),
            ),
            pred: (
                transpose(v("predator_projection", &[d, 4])?, d, 4),
                add(&bias("predator_projection")?, &typed("predator")?),
            ),
            boid: (
                transpose(v("boid_projection", &[d, 4])?, d, 4),
                add(&bias("boid_projection")?, &typed("boid")?),
            ),
            blocks,
            output: (
                transpose(v("output_weight", &[2, d])?, 2, d),
                v("output_bias", &[2])?,
            ),
        })
    }
}

/// A browser file with random weights (scaled like PyTorch's initialisation), for benchmarks.
pub fn random_browser_file(
    rng: &mut crate::core::Rng,
    d: usize,
    heads: usize,
    layers: usize,
    ffn: usize,
) -> Value {
    let mut v = |n: usize, scale: f64| -> Vec<f64> {
        (0..n)
            .map(|_| (rng.next_f64() * 2.0 - 1.0) * scale)
            .collect()
    };
    let mut m = |rows: usize, cols: usize| -> Vec<Vec<f64>> {
        (0..rows)
            .map(|_| v(cols, 1.0 / (cols as f64).sqrt()))
            .collect()
    };
    let blocks: Vec<Value> = (0..layers)
        .map(|_| {
            serde_json::json!({
                "ln_scale": vec![1.0; d], "ln_bias": vec![0.0; d], "qkv_weight": m(3 * d, d), "qkv_bias": vec![0.0; 3 * d],
                "attn_out_weight": m(d, d), "attn_out_bias": vec![0.0; d], "ffn_ln_scale": vec![1.0; d], "ffn_ln_bias": vec![0.0; d],
                "ffn_gate_weight": m(ffn, d), "ffn_gate_bias": vec![0.0; ffn], "ffn_up_weight": m(ffn, d), "ffn_up_bias": vec![0.0; ffn],
                "ffn_down_weight": m(d, ffn), "ffn_down_bias": vec![0.0; d],
            })
        })
        .collect();
    serde_json::json!({
        "d_model": d, "n_heads": heads, "n_layers": layers, "ffn_hidden": ffn,
        "cls_embedding": m(1, d)[0], "type_embeddings": {"cls": m(1, d)[0], "ctx": m(1, d)[0], "predator": m(1, d)[0], "boid": m(1, d)[0]},
        "ctx_projection": m(d, 2), "predator_projection": m(d, 4), "boid_projection": m(d, 4),
        "layers": blocks, "output_weight": m(2, d), "output_bias": vec![0.0; 2],
    })
}
