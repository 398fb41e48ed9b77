//! The real binary for the predator: deterministic shards, traces that replay from their own
//! initial state, matches, and bad input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rust_gen"));
    for var in [
        "EPISODES",
        "TEACHER",
        "STEPS",
        "MAX_BOIDS",
        "SEED",
        "SHARD_INDEX",
        "OUT",
        "THREADS",
        "STUDENT",
        "STUDENT_SHARE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rust_gen-predator-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

fn generate(out: &Path, threads: &str, teacher: &str) -> Value {
    let o = out.to_str().expect("utf-8");
    let args = [
        "predator",
        "generate",
        "--episodes",
        "5",
        "--teacher",
        teacher,
        "--steps",
        "120",
        "--max-boids",
        "12",
        "--seed",
        "8",
        "--shard-index",
        "1",
        "--threads",
        threads,
        "--out",
        o,
    ];
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

#[test]
fn shards_are_the_same_with_1_and_2_threads_and_have_the_documented_tensors() {
    for teacher in ["pursuit", "planner", "planner:replan=2:follow=0"] {
        let name = teacher.replace([':', '='], "-");
        let (a, b) = (temp(&format!("{name}1")), temp(&format!("{name}2")));
        let line = generate(&a, "1", teacher);
        generate(&b, "2", teacher);
        let (fa, fb) = (
            std::fs::read(a.join("shard-00001.safetensors")).expect("a"),
            std::fs::read(b.join("shard-00001.safetensors")).expect("b"),
        );
        assert_eq!(fa, fb, "{teacher}: thread count changed the shard");
        let rows = line["rows"].as_u64().expect("rows") as usize;
        assert_eq!(line["metadata"]["teacher"], teacher);
        assert_eq!(line["episodes"], 5);
        let head_len = u64::from_le_bytes(fa[..8].try_into().expect("8")) as usize;
        let head: Value = serde_json::from_slice(&fa[8..8 + head_len]).expect("header");
        let shape = |name: &str| {
            head[name]["shape"]
                .as_array()
                .expect(name)
                .iter()
                .map(|v| v.as_u64().expect("dim") as usize)
                .collect::<Vec<_>>()
        };
        assert_eq!(shape("context"), vec![rows, 2]);
        assert_eq!(shape("predator"), vec![rows, 4]);
        assert_eq!(shape("boids"), vec![rows, 12, 4]);
        assert_eq!(shape("target"), vec![rows, 2]);
        for name in ["count", "episode", "step"] {
            assert_eq!(shape(name), vec![rows], "{name}");
        }
        assert_eq!(head["count"]["dtype"], "U16");
        assert_eq!(head["boids"]["dtype"], "F32");
        let _ = std::fs::remove_dir_all(a);
        let _ = std::fs::remove_dir_all(b);
    }
}

#[test]
fn a_trace_replays_exactly_from_its_own_initial_state() {
    let dir = temp("trace");
    let first = run(&[
        "predator",
        "trace",
        "--player",
        "planner",
        "--seed",
        "3",
        "--steps",
        "300",
        "--max-boids",
        "20",
    ]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let trace: Value = serde_json::from_slice(&first.stdout).expect("JSON");
    assert!(!trace["steps"].as_array().expect("steps").is_empty());
    let state = dir.join("state.json");
    std::fs::write(&state, trace["initial"].to_string()).expect("write");
    let again = run(&[
        "predator",
        "trace",
        "--player",
        "planner",
        "--state",
        state.to_str().expect("utf-8"),
        "--steps",
        "300",
    ]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let replayed: Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(
        trace["steps"], replayed["steps"],
        "floats round-trip through JSON, so the replay is exact"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn matches_pair_players_on_the_same_episodes() {
    let output = run(&[
        "predator",
        "match",
        "--players",
        "pursuit,pursuit,still,planner:targets=2:horizon=5:replan=3:radius=300:follow=1",
        "--episodes",
        "12",
        "--steps",
        "200",
        "--seed",
        "1",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let players = report["players"].as_array().expect("players");
    assert_eq!(
        players[1]["catch_rate"], players[0]["catch_rate"],
        "the same player on the same episodes"
    );
    assert_eq!(
        players[1]["paired_difference_ci95"],
        serde_json::json!([0.0, 0.0])
    );
    let (lo, hi) = (
        players[2]["catch_rate_ci95"][0].as_f64().expect("lo"),
        players[2]["catch_rate_ci95"][1].as_f64().expect("hi"),
    );
    assert!(
        lo <= players[2]["catch_rate"].as_f64().expect("rate")
            && players[2]["catch_rate"].as_f64().expect("rate") <= hi
    );
}

#[test]
fn the_teacher_takes_planner_settings_and_the_shard_records_them() {
    let shard = |teacher: &str| {
        let out = temp(&format!("settings-{}", teacher.replace([':', '='], "-")));
        let line = generate(&out, "2", teacher);
        let bytes = std::fs::read(out.join("shard-00001.safetensors")).expect("shard");
        let _ = std::fs::remove_dir_all(out);
        (line["metadata"]["teacher"].clone(), bytes)
    };
    let (default_name, default_shard) = shard("planner");
    // Settings equal to the defaults are the default planner, and are recorded as such.
    let (same_name, same_shard) = shard("planner:replan=1:follow=1:directions=8:terminal=time");
    assert_eq!((same_name, &same_shard), (default_name, &default_shard));
    // A plan every second step, repeating its first action, labels the steps differently.
    let (name, other) = shard("planner:follow=0:replan=2");
    assert_eq!(name, "planner:replan=2:follow=0");
    assert_ne!(other, default_shard, "the settings reached the teacher");
}

fn fails_with(args: &[&str], message: &str) {
    let output = run(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(message), "{args:?}: {stderr}");
}

#[test]
fn bad_input_is_refused_naming_the_flag() {
    let dir = temp("bad");
    let out = dir.to_str().expect("utf-8");
    fails_with(
        &["predator", "generate", "--episodes", "0", "--out", out],
        "--episodes",
    );
    for (bad, message) in [
        ("oracle", "'--teacher <TEACHER>': 'oracle' is not a planner"),
        (
            "planner:replan=0",
            "'--teacher <TEACHER>': planner option 'replan=0': expected",
        ),
        (
            "planners",
            "'--teacher <TEACHER>': 'planners' is not a planner",
        ),
        ("lead", "a teacher is pursuit or planner"),
    ] {
        fails_with(
            &[
                "predator",
                "generate",
                "--episodes",
                "2",
                "--teacher",
                bad,
                "--out",
                out,
            ],
            message,
        );
    }
    fails_with(
        &[
            "predator",
            "generate",
            "--episodes",
            "2",
            "--max-boids",
            "500",
            "--out",
            out,
        ],
        "--max-boids",
    );
    fails_with(
        &["predator", "match", "--players", "pursuit,wolf"],
        "--players: 'wolf' is not a player",
    );
    for bad in ["horizon=0", "radius=-5", "follow=2", "depth=3", "targets"] {
        fails_with(
            &["predator", "match", "--players", &format!("planner:{bad}")],
            &format!("--players: planner option '{bad}': expected"),
        );
    }
    let state = dir.join("state.json");
    std::fs::write(&state, "{\"width\": 100}").expect("write");
    fails_with(
        &[
            "predator",
            "trace",
            "--player",
            "still",
            "--state",
            state.to_str().expect("utf-8"),
        ],
        "state.json': not a state",
    );
    fails_with(
        &["predator", "trace", "--player", "still"],
        "give --state FILE or --seed N",
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_student_drives_its_share_of_episodes_and_the_teacher_still_labels_them() {
    use rust_gen::core::Rng;
    use rust_gen::predator::nn::random_browser_file;
    let dir = temp("student");
    let model = dir.join("student.json");
    let net = random_browser_file(&mut Rng::new(4), 16, 2, 1, 32);
    std::fs::write(&model, net.to_string()).expect("write");
    let shard = |name: &str, threads: &str, student: &[&str]| -> (Value, Vec<u8>) {
        let out = dir.join(name);
        let mut args = vec![
            "predator",
            "generate",
            "--episodes",
            "6",
            "--teacher",
            "pursuit",
            "--steps",
            "150",
            "--max-boids",
            "10",
            "--seed",
            "2",
            "--threads",
            threads,
            "--out",
            out.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(student);
        let output = run(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        (
            line,
            std::fs::read(out.join("shard-00000.safetensors")).expect("shard"),
        )
    };
    let m = model.to_str().expect("utf-8");
    let (plain, plain_bytes) = shard("plain", "1", &[]);
    let (half, half_bytes) = shard("half", "1", &["--student", m, "--student-share", "0.5"]);
    let (_, half_bytes_2) = shard("half2", "2", &["--student", m, "--student-share", "0.5"]);
    assert_eq!(plain["student_episodes"], 0);
    assert_eq!(half["student_episodes"], 3, "half of 6 episodes");
    assert_eq!(half["metadata"]["student_share"], "0.5");
    assert_eq!(half_bytes, half_bytes_2, "thread count changed the shard");
    assert_ne!(
        plain_bytes, half_bytes,
        "the student changed the episodes it drove"
    );
    let (_, none_bytes) = shard("none", "1", &["--student", m, "--student-share", "0"]);
    let (plain_len, none_len) = (plain_bytes.len(), none_bytes.len());
    assert_eq!(
        plain_len, none_len,
        "share 0: the teacher drives every episode"
    );
    let _ = std::fs::remove_dir_all(dir);
}
