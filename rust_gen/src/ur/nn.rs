//! The two Ur networks for inference (spec sections 6 and 7), read from our explicit file or the
//! compatible flat file. Matrices are kept as (in, out) row-major, the layout in which
//! y_j = sum_i x_i * W[i][j] + b_j is a run of contiguous multiply-adds.

use super::features::NUM_FEATURES;
use serde_json::Value;
use std::path::Path;

pub const HIDDEN: [usize; 4] = [256, 128, 64, 32];
pub const OUR_FORMAT: &str = "ludus.weights/1";
pub const OUR_LAYOUT: &str = "row-major (out, in)";
pub const FEATURE_SET: &str = "ur-150-v1";
/// Widest layer: the size of the scratch rows.
const WIDEST: usize = 256;

struct Layer {
    inputs: usize,
    outputs: usize,
    /// (in, out) row-major: weight of input i to output j at i * outputs + j.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

pub struct Network {
    layers: Vec<Layer>,
    tanh_output: bool,
}

pub struct Networks {
    pub value: Network,
    pub policy: Network,
}

/// Scratch rows for a forward pass, reused so inference allocates nothing per move.
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Scratch {
    pub fn new(batch: usize) -> Self {
        Scratch {
            a: vec![0.0; batch * WIDEST],
            b: vec![0.0; batch * WIDEST],
        }
    }
}

fn shapes(outputs: usize) -> Vec<(usize, usize)> {
    let mut widths = vec![NUM_FEATURES];
    widths.extend(HIDDEN);
    widths.push(outputs);
    widths.windows(2).map(|w| (w[1], w[0])).collect() // (out, in)
}

pub fn flat_len(outputs: usize) -> usize {
    shapes(outputs).iter().map(|(o, i)| o * i + o).sum()
}

impl Network {
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Runs `batch` rows of 150 features; writes `batch * outputs` numbers to `out`.
    pub fn forward(&self, input: &[f32], batch: usize, scratch: &mut Scratch, out: &mut [f32]) {
        debug_assert!(input.len() >= batch * NUM_FEATURES && out.len() >= batch * self.outputs());
        let last = self.layers.len() - 1;
        for (k, layer) in self.layers.iter().enumerate() {
            let (src, dst): (&[f32], &mut [f32]) = if k == 0 {
                (input, &mut scratch.a)
            } else if k % 2 == 1 {
                (&scratch.a, &mut scratch.b)
            } else {
                (&scratch.b, &mut scratch.a)
            };
            for row in 0..batch {
                let stride = if k == 0 { NUM_FEATURES } else { WIDEST };
                let x = &src[row * stride..row * stride + layer.inputs];
                let y = &mut dst[row * WIDEST..row * WIDEST + layer.outputs];
                y.copy_from_slice(&layer.bias);
                for (i, &xi) in x.iter().enumerate() {
                    if xi != 0.0 {
                        let w = &layer.weight[i * layer.outputs..(i + 1) * layer.outputs];
                        for (yj, wj) in y.iter_mut().zip(w) {
                            *yj += xi * wj;
                        }
                    }
                }
                if k < last {
                    for v in y.iter_mut() {
                        *v = v.max(0.0);
                    }
                }
            }
        }
        let result = if last.is_multiple_of(2) {
            &scratch.a
        } else {
            &scratch.b
        };
        let n = self.outputs();
        for row in 0..batch {
            for j in 0..n {
                let v = result[row * WIDEST + j];
                out[row * n + j] = if self.tanh_output { v.tanh() } else { v };
            }
        }
    }
}

/// A weights file that cannot be used; the message names the file and the field.
#[derive(Debug)]
pub struct WeightsError(pub String);

impl std::fmt::Display for WeightsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn numbers(
    value: Option<&Value>,
    expected: usize,
    file: &str,
    field: &str,
) -> Result<Vec<f32>, WeightsError> {
    let list = value.and_then(Value::as_array).ok_or_else(|| {
        WeightsError(format!(
            "{file}: field '{field}' is missing or not a list of numbers"
        ))
    })?;
    if list.len() != expected {
        return Err(WeightsError(format!(
            "{file}: field '{field}' has {} numbers, expected {expected}",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(k, v)| match v.as_f64() {
            // 1e300 is finite in f64 but infinite as the f32 the network computes with.
            Some(x) if (x as f32).is_finite() => Ok(x as f32),
            _ => Err(WeightsError(format!(
                "{file}: field '{field}' holds a non-finite or non-numeric value at index {k}"
            ))),
        })
        .collect()
}

/// From the compatible flat array: per layer, the (in, out) matrix then the bias.
fn from_flat(flat: &[f32], outputs: usize, tanh_output: bool) -> Network {
    let mut at = 0;
    let layers = shapes(outputs)
        .into_iter()
        .map(|(o, i)| {
            let weight = flat[at..at + o * i].to_vec();
            let bias = flat[at + o * i..at + o * i + o].to_vec();
            at += o * i + o;
            Layer {
                inputs: i,
                outputs: o,
                weight,
                bias,
            }
        })
        .collect();
    Network {
        layers,
        tanh_output,
    }
}

fn from_ours(obj: &Value, name: &str, outputs: usize, file: &str) -> Result<Network, WeightsError> {
    let layers_json = obj["networks"][name]["layers"].as_array().ok_or_else(|| {
        WeightsError(format!("{file}: field 'networks.{name}.layers' is missing"))
    })?;
    let expected = shapes(outputs);
    if layers_json.len() != expected.len() {
        return Err(WeightsError(format!(
            "{file}: field 'networks.{name}.layers' has {} layers, expected {}",
            layers_json.len(),
            expected.len()
        )));
    }
    let mut layers = Vec::new();
    for (k, (spec, &(o, i))) in layers_json.iter().zip(&expected).enumerate() {
        let field = format!("networks.{name}.layers[{k}].weight");
        let layout = spec["weight"]["layout"].as_str().unwrap_or("");
        if layout != OUR_LAYOUT {
            return Err(WeightsError(format!(
                "{file}: field '{field}.layout' is '{layout}', expected '{OUR_LAYOUT}'"
            )));
        }
        let shape: Vec<u64> = spec["weight"]["shape"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if shape != [o as u64, i as u64] {
            return Err(WeightsError(format!(
                "{file}: field '{field}.shape' is {shape:?}, expected [{o}, {i}]"
            )));
        }
        let w = numbers(
            spec["weight"].get("data"),
            o * i,
            file,
            &format!("{field}.data"),
        )?;
        let bias = numbers(
            spec["bias"].get("data"),
            o,
            file,
            &format!("networks.{name}.layers[{k}].bias.data"),
        )?;
        // (out, in) -> (in, out)
        let mut weight = vec![0.0; o * i];
        for r in 0..o {
            for c in 0..i {
                weight[c * o + r] = w[r * i + c];
            }
        }
        layers.push(Layer {
            inputs: i,
            outputs: o,
            weight,
            bias,
        });
    }
    Ok(Network {
        layers,
        tanh_output: name == "value",
    })
}

impl Networks {
    /// Reads our file (it has a "format" field) or the compatible flat file.
    pub fn load(path: &Path) -> Result<Networks, WeightsError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| WeightsError(format!("{file}: cannot read: {e}")))?;
        let obj: Value = serde_json::from_str(&text)
            .map_err(|e| WeightsError(format!("{file}: not valid JSON: {e}")))?;
        Networks::from_json(&obj, &file)
    }

    pub fn from_json(obj: &Value, file: &str) -> Result<Networks, WeightsError> {
        if let Some(format) = obj.get("format") {
            if format != OUR_FORMAT {
                return Err(WeightsError(format!(
                    "{file}: field 'format' is {format}, expected \"{OUR_FORMAT}\""
                )));
            }
            if obj["feature_set"] != FEATURE_SET {
                return Err(WeightsError(format!(
                    "{file}: field 'feature_set' is {}, expected \"{FEATURE_SET}\"",
                    obj["feature_set"]
                )));
            }
            return Ok(Networks {
                value: from_ours(obj, "value", 1, file)?,
                policy: from_ours(obj, "policy", 7, file)?,
            });
        }
        if let Some(config) = obj.get("network_config") {
            let want = serde_json::json!({"input_size": 150, "hidden_sizes": HIDDEN, "value_output_size": 1, "policy_output_size": 7});
            for key in [
                "input_size",
                "hidden_sizes",
                "value_output_size",
                "policy_output_size",
            ] {
                if config.get(key) != want.get(key) {
                    return Err(WeightsError(format!(
                        "{file}: field 'network_config.{key}' is {:?}, expected {}",
                        config.get(key),
                        want[key]
                    )));
                }
            }
        }
        let value = numbers(obj.get("value_weights"), flat_len(1), file, "value_weights")?;
        let policy = numbers(
            obj.get("policy_weights"),
            flat_len(7),
            file,
            "policy_weights",
        )?;
        Ok(Networks {
            value: from_flat(&value, 1, true),
            policy: from_flat(&policy, 7, false),
        })
    }
}
