//! Transformer inference against a slow reference written here from docs/predator.md section 7
//! (f64, one token at a time, nothing shared with the fast code), on random weights, through
//! both weight files; and bad files refused with the file and field named.

use rust_gen::core::Rng;
use rust_gen::predator::encode::Observation;
use rust_gen::predator::nn::{Scratch, Transformer};
use rust_gen::predator::players::PlayerSpec;
use rust_gen::predator::sim::{Boid, Predator, State, V2};
use serde_json::{json, Value};

fn randoms(rng: &mut Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| (rng.next_f64() * 2.0 - 1.0) * scale)
        .collect()
}

fn matrix(rng: &mut Rng, rows: usize, cols: usize) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|_| randoms(rng, cols, 1.0 / (cols as f64).sqrt()))
        .collect()
}

/// A browser file (biases folded into the type embeddings) with random numbers, and the
/// unfolded biases, for building our file from the same network.
fn browser_file(
    rng: &mut Rng,
    d: usize,
    heads: usize,
    layers: usize,
    f: usize,
) -> (Value, [Vec<f64>; 3]) {
    let biases = [
        randoms(rng, d, 0.3),
        randoms(rng, d, 0.3),
        randoms(rng, d, 0.3),
    ];
    let types = [
        randoms(rng, d, 0.3),
        randoms(rng, d, 0.3),
        randoms(rng, d, 0.3),
        randoms(rng, d, 0.3),
    ];
    let fold =
        |t: &Vec<f64>, b: &Vec<f64>| -> Vec<f64> { t.iter().zip(b).map(|(x, y)| x + y).collect() };
    let layer = |rng: &mut Rng| {
        json!({
            "ln_scale": randoms(rng, d, 0.2).iter().map(|x| 1.0 + x).collect::<Vec<_>>(), "ln_bias": randoms(rng, d, 0.1),
            "qkv_weight": matrix(rng, 3 * d, d), "qkv_bias": randoms(rng, 3 * d, 0.1),
            "attn_out_weight": matrix(rng, d, d), "attn_out_bias": randoms(rng, d, 0.1),
            "ffn_ln_scale": randoms(rng, d, 0.2).iter().map(|x| 1.0 + x).collect::<Vec<_>>(), "ffn_ln_bias": randoms(rng, d, 0.1),
            "ffn_gate_weight": matrix(rng, f, d), "ffn_gate_bias": randoms(rng, f, 0.1),
            "ffn_up_weight": matrix(rng, f, d), "ffn_up_bias": randoms(rng, f, 0.1),
            "ffn_down_weight": matrix(rng, d, f), "ffn_down_bias": randoms(rng, d, 0.1),
        })
    };
    let layers: Vec<Value> = (0..layers).map(|_| layer(rng)).collect();
    let file = json!({
        "d_model": d, "n_heads": heads, "n_layers": layers.len(), "ffn_hidden": f,
        "cls_embedding": randoms(rng, d, 0.5),
        "type_embeddings": {"cls": types[0], "ctx": fold(&types[1], &biases[0]), "predator": fold(&types[2], &biases[1]), "boid": fold(&types[3], &biases[2])},
        "ctx_projection": matrix(rng, d, 2), "predator_projection": matrix(rng, d, 4), "boid_projection": matrix(rng, d, 4),
        "layers": layers, "output_weight": matrix(rng, 2, d), "output_bias": randoms(rng, 2, 0.1),
    });
    // Our file states the biases; its type embeddings are the unfolded ones.
    let _ = types;
    (file, biases)
}

/// Our explicit file for the same network: flat data with shapes, the biases separate.
fn our_file(browser: &Value, biases: &[Vec<f64>; 3]) -> Value {
    fn flat(v: &Value) -> Value {
        match v {
            Value::Array(rows) if rows.first().is_some_and(Value::is_array) => {
                let data: Vec<Value> = rows
                    .iter()
                    .flat_map(|r| r.as_array().expect("row").clone())
                    .collect();
                json!({"shape": [rows.len(), rows[0].as_array().expect("row").len()], "data": data})
            }
            Value::Array(items) => json!({"shape": [items.len()], "data": items}),
            other => other.clone(),
        }
    }
    let mut tensors = serde_json::Map::new();
    for (key, value) in browser.as_object().expect("object") {
        match key.as_str() {
            "d_model" | "n_heads" | "n_layers" | "ffn_hidden" => {}
            "layers" => {
                let layers: Vec<Value> = value
                    .as_array()
                    .expect("layers")
                    .iter()
                    .map(|l| {
                        Value::Object(
                            l.as_object()
                                .expect("layer")
                                .iter()
                                .map(|(k, v)| (k.clone(), flat(v)))
                                .collect(),
                        )
                    })
                    .collect();
                tensors.insert(key.clone(), Value::Array(layers));
            }
            "type_embeddings" => {
                let mut types = serde_json::Map::new();
                for (name, bias) in [
                    ("cls", None),
                    ("ctx", Some(&biases[0])),
                    ("predator", Some(&biases[1])),
                    ("boid", Some(&biases[2])),
                ] {
                    let folded: Vec<f64> = value[name]
                        .as_array()
                        .expect("type")
                        .iter()
                        .map(|x| x.as_f64().expect("number"))
                        .collect();
                    let unfolded: Vec<f64> = match bias {
                        Some(b) => folded.iter().zip(b).map(|(t, b)| t - b).collect(),
                        None => folded,
                    };
                    types.insert(name.into(), flat(&json!(unfolded)));
                }
                tensors.insert(key.clone(), Value::Object(types));
            }
            _ => {
                tensors.insert(key.clone(), flat(value));
            }
        }
    }
    for (name, bias) in [
        "ctx_projection_bias",
        "predator_projection_bias",
        "boid_projection_bias",
    ]
    .iter()
    .zip(biases)
    {
        tensors.insert(name.to_string(), flat(&json!(bias)));
    }
    let arch = json!({"d_model": browser["d_model"], "n_heads": browser["n_heads"], "n_layers": browser["n_layers"], "ffn_hidden": browser["ffn_hidden"]});
    json!({"format": "ludus.weights/1", "task": "predator", "architecture": arch, "tensors": tensors})
}

// ---- the reference: section 7 read literally, in f64 -----------------------------------------

fn vecf(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn mat(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().expect("rows").iter().map(vecf).collect()
}

fn apply(m: &[Vec<f64>], b: &[f64], x: &[f64]) -> Vec<f64> {
    m.iter()
        .zip(b)
        .map(|(row, bias)| row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + bias)
        .collect()
}

fn norm(x: &[f64], g: &[f64], b: &[f64]) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
    x.iter()
        .zip(g)
        .zip(b)
        .map(|((v, g), b)| (v - mean) / (var + 1e-5).sqrt() * g + b)
        .collect()
}

fn reference(w: &Value, obs: &Observation) -> [f64; 2] {
    let d = w["d_model"].as_u64().expect("d") as usize;
    let heads = w["n_heads"].as_u64().expect("h") as usize;
    let hd = d / heads;
    let add =
        |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> { a.iter().zip(&b).map(|(x, y)| x + y).collect() };
    let zero = vec![0.0; d];
    let mut x = vec![add(
        vecf(&w["cls_embedding"]),
        vecf(&w["type_embeddings"]["cls"]),
    )];
    x.push(add(
        apply(&mat(&w["ctx_projection"]), &zero, &obs.context),
        vecf(&w["type_embeddings"]["ctx"]),
    ));
    x.push(add(
        apply(&mat(&w["predator_projection"]), &zero, &obs.predator),
        vecf(&w["type_embeddings"]["predator"]),
    ));
    for b in &obs.boids {
        x.push(add(
            apply(&mat(&w["boid_projection"]), &zero, b),
            vecf(&w["type_embeddings"]["boid"]),
        ));
    }
    for layer in w["layers"].as_array().expect("layers") {
        let h: Vec<Vec<f64>> = x
            .iter()
            .map(|t| norm(t, &vecf(&layer["ln_scale"]), &vecf(&layer["ln_bias"])))
            .collect();
        let qkv: Vec<Vec<f64>> = h
            .iter()
            .map(|t| apply(&mat(&layer["qkv_weight"]), &vecf(&layer["qkv_bias"]), t))
            .collect();
        let mut attended = vec![vec![0.0; d]; x.len()];
        for (i, row) in attended.iter_mut().enumerate() {
            for head in 0..heads {
                let q = &qkv[i][head * hd..(head + 1) * hd];
                let scores: Vec<f64> = qkv
                    .iter()
                    .map(|k| {
                        q.iter()
                            .zip(&k[d + head * hd..d + (head + 1) * hd])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for (u, v) in qkv.iter().enumerate() {
                    for c in 0..hd {
                        row[head * hd + c] += e[u] / total * v[2 * d + head * hd + c];
                    }
                }
            }
        }
        for (t, a) in x.iter_mut().zip(&attended) {
            *t = add(
                t.clone(),
                apply(
                    &mat(&layer["attn_out_weight"]),
                    &vecf(&layer["attn_out_bias"]),
                    a,
                ),
            );
        }
        for t in x.iter_mut() {
            let h = norm(
                t,
                &vecf(&layer["ffn_ln_scale"]),
                &vecf(&layer["ffn_ln_bias"]),
            );
            let g = apply(
                &mat(&layer["ffn_gate_weight"]),
                &vecf(&layer["ffn_gate_bias"]),
                &h,
            );
            let u = apply(
                &mat(&layer["ffn_up_weight"]),
                &vecf(&layer["ffn_up_bias"]),
                &h,
            );
            let m: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| 0.5 * g * (1.0 + libm::erf(g / 2f64.sqrt())) * u)
                .collect();
            *t = add(
                t.clone(),
                apply(
                    &mat(&layer["ffn_down_weight"]),
                    &vecf(&layer["ffn_down_bias"]),
                    &m,
                ),
            );
        }
    }
    let out = apply(&mat(&w["output_weight"]), &vecf(&w["output_bias"]), &x[0]);
    [out[0].tanh(), out[1].tanh()]
}

fn observation(rng: &mut Rng, boids: usize) -> Observation {
    Observation {
        context: [0.3 + rng.next_f64() * 1.6, 0.3 + rng.next_f64() * 0.8],
        predator: [
            rng.next_f64() * 2.0 - 1.0,
            rng.next_f64() * 2.0 - 1.0,
            0.0,
            0.0,
        ],
        boids: (0..boids)
            .map(|_| {
                [
                    rng.next_f64() - 0.5,
                    rng.next_f64() - 0.5,
                    rng.next_f64() * 2.0 - 1.0,
                    rng.next_f64() * 2.0 - 1.0,
                ]
            })
            .collect(),
    }
}

fn write(name: &str, text: String) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("rust_gen-nn-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn fast_inference_equals_the_reference_through_both_files() {
    let mut rng = Rng::new(5);
    for (d, heads, layers, f) in [(8, 2, 2, 12), (48, 4, 3, 96)] {
        let (browser, biases) = browser_file(&mut rng, d, heads, layers, f);
        let ours = our_file(&browser, &biases);
        let paths = [
            write("browser.json", browser.to_string()),
            write("ours.json", ours.to_string()),
            write(
                "model.js",
                format!("window.TRANSFORMER_PARAMS = {browser};\n"),
            ),
        ];
        let nets: Vec<Transformer> = paths
            .iter()
            .map(|p| Transformer::load(p).expect("loads"))
            .collect();
        let mut scratch = Scratch::default();
        for boids in [1usize, 2, 7, 20, 50] {
            let obs = observation(&mut rng, boids);
            let want = reference(&browser, &obs);
            for net in &nets {
                let got = net.forward(&obs, &mut scratch);
                for k in 0..2 {
                    assert!(
                        (got[k] as f64 - want[k]).abs() < 1e-5,
                        "d {d}, {boids} boids: {got:?} vs {want:?}"
                    );
                }
            }
        }
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `net:` acts at full thrust in the network's direction, `net-raw:` with its output as it is.
#[test]
fn net_players_decode_the_output_to_a_direction_or_keep_it() {
    let mut rng = Rng::new(9);
    let (browser, _) = browser_file(&mut rng, 8, 2, 2, 12);
    let path = write("players.json", browser.to_string());
    let net = Transformer::load(&path).expect("loads");
    let boids = (0..5)
        .map(|id| Boid {
            pos: V2 {
                x: 100.0 + 40.0 * rng.next_f64(),
                y: 80.0 + 30.0 * rng.next_f64(),
            },
            vel: V2 {
                x: rng.next_f64() - 0.5,
                y: rng.next_f64() - 0.5,
            },
            id,
        })
        .collect();
    let state = State {
        width: 400.0,
        height: 300.0,
        boids,
        predator: Predator {
            pos: V2 { x: 50.0, y: 60.0 },
            vel: V2 { x: 1.0, y: -0.5 },
        },
    };
    let obs = Observation::encode(&state);
    let [x, y] = net.forward(&obs, &mut Scratch::default());
    let (x, y) = (x as f64, y as f64);
    let norm = (x * x + y * y).sqrt();
    assert!(
        norm > 0.01 && norm < 0.99,
        "an output the decoding changes: {norm}"
    );
    let act = |player: &str| {
        let spec = PlayerSpec::parse(&format!("{player}:{}", path.display())).expect("a player");
        spec.build(Rng::new(0)).act(&state, &obs)
    };
    assert_eq!(act("net-raw"), (x, y));
    let (ux, uy) = act("net");
    assert!(
        ((ux * ux + uy * uy).sqrt() - 1.0).abs() < 1e-12,
        "full thrust"
    );
    assert!(
        (ux - x / norm).abs() < 1e-12 && (uy - y / norm).abs() < 1e-12,
        "same direction"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn the_default_browser_file_has_71810_numbers() {
    let (browser, _) = browser_file(&mut Rng::new(1), 48, 4, 3, 96);
    fn count(v: &Value) -> usize {
        match v {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| {
                    !["d_model", "n_heads", "n_layers", "ffn_hidden"].contains(&k.as_str())
                })
                .map(|(_, v)| count(v))
                .sum(),
            Value::Number(_) => 1,
            _ => 0,
        }
    }
    assert_eq!(count(&browser), 71_810);
}

#[test]
fn bad_files_are_refused_naming_the_file_and_field() {
    let (good, _) = browser_file(&mut Rng::new(2), 8, 2, 2, 12);
    type Damage = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Damage, &str)> = vec![
        (
            Box::new(|w| {
                w["layers"][1]["qkv_weight"]
                    .as_array_mut()
                    .expect("rows")
                    .pop()
                    .map(|_| ())
                    .unwrap_or(())
            }),
            "field 'layers.1.qkv_weight' has shape [23, 8], expected [24, 8]",
        ),
        (
            Box::new(|w| w["output_bias"][1] = json!(1e300)),
            "field 'output_bias' holds a non-finite or non-number value at index 1",
        ),
        (
            Box::new(|w| {
                w["type_embeddings"]
                    .as_object_mut()
                    .expect("types")
                    .remove("boid")
                    .map(|_| ())
                    .unwrap_or(())
            }),
            "field 'type_embeddings.boid' is missing",
        ),
        (
            Box::new(|w| w["n_heads"] = json!(3)),
            "field 'n_heads' (3) must divide d_model (8)",
        ),
        (
            Box::new(|w| w["ctx_projection"][0] = json!([1.0])),
            "field 'ctx_projection' has a row of 1 numbers, expected 2",
        ),
    ];
    for (damage, message) in cases {
        let mut w = good.clone();
        damage(&mut w);
        let path = write("bad.json", w.to_string());
        let err = Transformer::load(&path).err().expect("refused");
        assert!(err.contains("bad.json") && err.contains(message), "{err}");
        let _ = std::fs::remove_file(path);
    }
}
