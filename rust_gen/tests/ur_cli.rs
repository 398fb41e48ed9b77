//! The real binary: determinism across thread counts, the output line, and bad input.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rust_gen"));
    for var in [
        "GAMES",
        "DEPTH",
        "SEED",
        "SHARD_INDEX",
        "OUT",
        "THREADS",
        "EXPLORATION",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn generate(out: &Path, extra: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.args([
        "ur",
        "generate",
        "--games",
        "6",
        "--depth",
        "2",
        "--seed",
        "42",
        "--shard-index",
        "3",
        "--out",
    ])
    .arg(out)
    .args(extra);
    cmd.output().expect("the binary runs")
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rust_gen_test_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    }
}

#[test]
fn same_seed_gives_identical_bytes_with_one_and_two_threads() {
    let (a, b) = (tempdir("t1"), tempdir("t2"));
    let one = generate(&a, &["--threads", "1"]);
    let two = generate(&b, &["--threads", "2"]);
    assert!(one.status.success() && two.status.success());
    let file = "shard-00003.safetensors";
    let bytes_a = std::fs::read(a.join(file)).expect("shard written");
    assert_eq!(bytes_a, std::fs::read(b.join(file)).expect("shard written"));
    assert_eq!(
        files_in(&a),
        vec![file.to_string()],
        "no temporary file is left"
    );
    // A different seed gives different games.
    let c = tempdir("seed");
    assert!(bin()
        .args([
            "ur",
            "generate",
            "--games",
            "6",
            "--depth",
            "2",
            "--seed",
            "43",
            "--shard-index",
            "3",
            "--out"
        ])
        .arg(&c)
        .status()
        .expect("runs")
        .success());
    assert_ne!(bytes_a, std::fs::read(c.join(file)).expect("shard written"));
}

#[test]
fn prints_one_json_line_with_the_figures() {
    let dir = tempdir("json");
    let out = generate(&dir, &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(stdout.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for key in ["rows", "games", "seconds", "samples_per_second", "path"] {
        assert!(line.get(key).is_some(), "missing {key}");
    }
    assert_eq!(line["games"], 6);
    assert!(
        line["rows"].as_u64().expect("rows") > 6 * 50,
        "Ur games have ~150 decisions"
    );
    let size = std::fs::metadata(dir.join("shard-00003.safetensors"))
        .expect("file")
        .len();
    assert_eq!(line["bytes"].as_u64(), Some(size));
}

#[test]
fn environment_variables_feed_the_flags() {
    let dir = tempdir("env");
    let out = bin()
        .args(["ur", "generate"])
        .env("GAMES", "2")
        .env("DEPTH", "1")
        .env("SHARD_INDEX", "7")
        .env("OUT", &dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files_in(&dir), vec!["shard-00007.safetensors".to_string()]);
}

/// Runs with bad input: exit code 2, a one-line message naming `name`, and no file written.
fn assert_rejected(args: &[&str], env: &[(&str, &str)], name: &str) {
    let dir = tempdir("bad");
    let mut cmd = bin();
    cmd.args(["ur", "generate"])
        .args(args)
        .arg("--out")
        .arg(&dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error:") && first.contains(name),
        "{args:?}: message should name {name}: {stderr}"
    );
    assert!(
        files_in(&dir).iter().all(|f| !f.ends_with(".safetensors")),
        "nothing may be written"
    );
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    assert_rejected(&["--games", "0"], &[], "--games");
    assert_rejected(&["--games", "ten"], &[], "--games");
    assert_rejected(&[], &[("GAMES", "-5")], "GAMES");
    assert_rejected(&["--games", "1", "--depth", "9"], &[], "--depth");
    assert_rejected(&["--games", "1"], &[("DEPTH", "abc")], "DEPTH");
    assert_rejected(
        &["--games", "1", "--exploration", "1.5"],
        &[],
        "--exploration",
    );
    assert_rejected(&["--games", "1", "--bogus"], &[], "--bogus");
}

#[test]
fn an_out_folder_that_cannot_be_written_is_refused_before_work() {
    let blocker = tempdir("blocker");
    std::fs::write(&blocker, b"a file, not a folder").expect("write");
    let out = bin()
        .args(["ur", "generate", "--games", "1", "--out"])
        .arg(blocker.join("sub"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--out/OUT"), "{stderr}");
    std::fs::remove_file(blocker).expect("cleanup");
}
