//! Players, matches and weight files through the real binary, plus the Wilson interval.

use rust_gen::core::stats::wilson;
use rust_gen::ur::matchplay::play_match;
use rust_gen::ur::nn::{flat_len, Networks};
use rust_gen::ur::players::PlayerSpec;
use serde_json::{json, Value};
use std::process::Command;

fn spec(text: &str) -> PlayerSpec {
    PlayerSpec::parse(text).expect("a valid player")
}

#[test]
fn the_teacher_beats_random_in_nearly_all_games() {
    let report = play_match(&spec("emm:2"), &spec("random"), 200, 1, None);
    assert!(
        report.a_wins >= 180,
        "emm:2 won only {} of 200",
        report.a_wins
    );
    assert_eq!(report.a_wins + report.b_wins + report.unfinished, 200);
}

#[test]
fn matches_are_deterministic_per_seed_and_seats_alternate() {
    let one = play_match(&spec("greedy"), &spec("random"), 50, 9, None);
    let two = play_match(&spec("greedy"), &spec("random"), 50, 9, None);
    assert_eq!((one.a_wins, one.mean_plies), (two.a_wins, two.mean_plies));
    // The same player on both sides: seats alternate, so neither side can be favoured by P1.
    let mirror = play_match(&spec("emm:1"), &spec("emm:1"), 100, 4, None);
    assert_eq!(mirror.a_wins + mirror.b_wins, 100);
}

#[test]
fn wilson_interval_matches_known_values() {
    let close = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4;
    assert!(
        close(wilson(50, 100), [0.4038, 0.5962]),
        "{:?}",
        wilson(50, 100)
    );
    assert!(close(wilson(0, 10), [0.0, 0.2775]), "{:?}", wilson(0, 10));
    assert!(close(wilson(10, 10), [0.7225, 1.0]), "{:?}", wilson(10, 10));
    assert!(
        close(wilson(38, 50), [0.6259, 0.8570]),
        "{:?}",
        wilson(38, 50)
    );
}

fn compat_file(value_len: usize, tweak: impl Fn(&mut Value)) -> Value {
    let mut obj = json!({
        "value_weights": vec![0.01f32; value_len],
        "policy_weights": vec![0.02f32; flat_len(7)],
        "network_config": {"input_size": 150, "hidden_sizes": [256, 128, 64, 32], "value_output_size": 1, "policy_output_size": 7},
    });
    tweak(&mut obj);
    obj
}

#[test]
fn bad_weight_files_are_rejected_naming_file_and_field() {
    let err = |obj: Value| {
        Networks::from_json(&obj, "w.json")
            .err()
            .expect("rejected")
            .to_string()
    };
    assert!(Networks::from_json(&compat_file(flat_len(1), |_| {}), "w.json").is_ok());
    assert_eq!(
        err(compat_file(100, |_| {})),
        "w.json: field 'value_weights' has 100 numbers, expected 81921"
    );
    let nan = err(compat_file(flat_len(1), |o| {
        o["policy_weights"][3] = Value::Null
    }));
    assert!(
        nan.contains("'policy_weights' holds a non-finite or non-numeric value at index 3"),
        "{nan}"
    );
    let huge = err(compat_file(flat_len(1), |o| {
        o["value_weights"][7] = json!(1e300)
    }));
    assert!(
        huge.contains("'value_weights' holds a non-finite or non-numeric value at index 7"),
        "{huge}"
    );
    let config = err(compat_file(flat_len(1), |o| {
        o["network_config"]["hidden_sizes"] = json!([256, 128])
    }));
    assert!(
        config.contains("field 'network_config.hidden_sizes'"),
        "{config}"
    );
    let ours =
        err(json!({"format": "ludus.weights/1", "feature_set": "ur-150-v1", "networks": {}}));
    assert!(
        ours.contains("field 'networks.value.layers' is missing"),
        "{ours}"
    );
}

#[test]
fn a_truncated_file_is_refused_by_the_binary_with_exit_code_2() {
    let path = std::env::temp_dir().join(format!("truncated-{}.json", std::process::id()));
    let text = serde_json::to_string(&compat_file(flat_len(1), |_| {})).expect("json");
    std::fs::write(&path, &text[..text.len() / 2]).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_rust_gen"))
        .args(["ur", "match", "--b", "random", "--games", "2", "--a"])
        .arg(format!("value:{}", path.display()))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--a:")
            && stderr.contains(&path.display().to_string())
            && stderr.contains("not valid JSON"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rust_gen"))
        .args(["ur", "match", "--a", "emm:9", "--b", "random"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--a: 'emm:9'"));
}
