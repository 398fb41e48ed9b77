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
fn paired_games_replay_the_same_luck_so_a_player_against_itself_scores_exactly_half() {
    // Games 2k and 2k + 1 share their dice and random choices with the seats swapped: the same
    // player on both sides plays the same game twice, each side winning one.
    for player in ["emm:1", "random", "greedy"] {
        let report = play_match(&spec(player), &spec(player), 101, 5, None);
        let finished = report.a_wins + report.b_wins;
        assert_eq!(finished + report.unfinished, 101, "{player}");
        // 50 pairs and a last unpaired game: the pairs split evenly, the last game goes one way.
        assert!(
            report.a_wins.abs_diff(report.b_wins) <= 1,
            "{player}: {} against {}",
            report.a_wins,
            report.b_wins
        );
    }
    // Different players do not replay the same game: the pairing shares only the luck.
    let mixed = play_match(&spec("emm:1"), &spec("random"), 40, 5, None);
    assert!(mixed.a_wins > mixed.b_wins);
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

/// A value network that reads only who is to move: tanh(0.5) when P1 is to move, tanh(-0.5)
/// for P2 (feature 46 is +1 or -1), through ReLU units that pass it on unchanged.
fn mover_only_network() -> Networks {
    let file =
        json!({"value_weights": mover_only_weights(), "policy_weights": vec![0.0f32; flat_len(7)]});
    Networks::from_json(&file, "mover-only.json").expect("a valid compat file")
}

/// The flat compat array of `mover_only_network`'s value network.
fn mover_only_weights() -> Vec<f32> {
    let widths = [150usize, 256, 128, 64, 32, 1];
    let mut flat = Vec::new();
    for (layer, pair) in widths.windows(2).enumerate() {
        let (inputs, outputs) = (pair[0], pair[1]);
        let mut weight = vec![0.0f32; inputs * outputs]; // (in, out): index i * out + j
        if layer == 0 {
            weight[46 * outputs] = 1.0; // unit 0: relu(x46)
            weight[46 * outputs + 1] = -1.0; // unit 1: relu(-x46)
        } else if outputs == 1 {
            weight[0] = 0.5;
            weight[1] = -0.5;
        } else {
            weight[0] = 1.0;
            weight[outputs + 1] = 1.0;
        }
        flat.extend(weight);
        flat.extend(vec![0.0f32; outputs]);
    }
    assert_eq!(flat.len(), flat_len(1));
    flat
}

#[test]
fn the_value_player_follows_a_pass_to_the_side_that_moves_after_it() {
    use rust_gen::core::Rng;
    use rust_gen::ur::game::advance;
    use rust_gen::ur::players::{Kind, Player};
    use rust_gen::ur::rules::{pieces_of, Position, ROLL_WEIGHTS};
    let nets = std::sync::Arc::new(mover_only_network());
    let spec = PlayerSpec {
        kind: Kind::Value(nets.clone()),
        text: "value:mover-only".into(),
    };
    let mut player = Player::new(&spec);
    // The reference, by hand: each roll of the next mover with a legal move is a decision state
    // of that mover; every other roll (0, or blocked) passes the turn to the other side, whose
    // own passes hand it back, and so on.
    let of_mover = |k: usize| {
        if k == 0 {
            0.5f32.tanh()
        } else {
            (-0.5f32).tanh()
        }
    };
    let weight_with_moves = |pos: &Position, k: usize| -> f32 {
        (1..5u8)
            .filter(|&r| pos.legal_moves(k, r) != 0)
            .map(|r| ROLL_WEIGHTS[r as usize] as f32)
            .sum()
    };
    let mut rng = Rng::new(5);
    let (mut checked, mut blocked) = (0, 0);
    for _game in 0..40 {
        let (mut pos, mut mover) = (Position::initial(), 0usize);
        while pos.winner().is_none() {
            let roll = (0..4).map(|_| rng.below(2) as u8).sum::<u8>();
            let legal = pos.legal_moves(mover, roll);
            if legal != 0 {
                let values = player.value_of_moves(&nets, &pos, mover, roll);
                for piece in pieces_of(pos.distinct_moves(mover, roll)) {
                    let (child, next) = advance(&pos, mover, roll, Some(piece));
                    if child.winner().is_some() {
                        continue;
                    }
                    let (moves, back) = (
                        weight_with_moves(&child, next),
                        weight_with_moves(&child, 1 - next),
                    );
                    // Before the next roll: X = A + p Y with the next mover, Y = B + q X with
                    // the other side, iterated to its fixed point.
                    let (p, q) = (1.0 - moves / 16.0, 1.0 - back / 16.0);
                    let (a, b) = (
                        moves / 16.0 * of_mover(next),
                        back / 16.0 * of_mover(1 - next),
                    );
                    let (mut x, mut y) = (0.0f32, 0.0f32);
                    for _ in 0..2000 {
                        (x, y) = (a + p * y, b + q * x);
                    }
                    let expected = x;
                    let mover_side = if mover == 1 { expected } else { -expected };
                    let got = values[piece].expect("a value for every distinct move");
                    assert!(
                        (got - mover_side).abs() < 1e-5,
                        "{got} against {mover_side} by hand"
                    );
                    checked += 1;
                    blocked += (moves < 15.0) as usize; // a roll besides 0 passes
                }
            }
            let piece = if legal == 0 {
                None
            } else {
                pieces_of(legal).next()
            };
            (pos, mover) = advance(&pos, mover, roll, piece);
        }
    }
    assert!(
        checked > 1000 && blocked > 50,
        "{checked} moves checked, {blocked} with a blocked roll"
    );
}

/// The compat file of `mover_only_network` with a policy whose logits are its last biases,
/// whatever the position.
fn fixed_policy_network(logits: [f32; 7]) -> Networks {
    let mut policy = vec![0.0f32; flat_len(7)];
    let start = policy.len() - 7;
    policy[start..].copy_from_slice(&logits);
    let file = json!({"value_weights": mover_only_weights(), "policy_weights": policy});
    Networks::from_json(&file, "fixed-policy.json").expect("a valid compat file")
}

#[test]
fn the_guided_player_adds_the_weighted_log_probability_of_the_policy_to_each_value() {
    use rust_gen::core::Rng;
    use rust_gen::ur::game::advance;
    use rust_gen::ur::players::{Kind, Player, GUIDE_WEIGHT};
    use rust_gen::ur::rules::{pieces_of, Position};
    // Logit gaps of tens: times the weight, they are of the size of the value gaps here, so
    // the prior decides some moves and not others.
    let logits = [0.0, 40.0, -30.0, 10.0, 80.0, -60.0, 20.0];
    let nets = std::sync::Arc::new(fixed_policy_network(logits));
    let of = |kind: Kind, text: &str| {
        Player::new(&PlayerSpec {
            kind,
            text: text.into(),
        })
    };
    let mut guided = of(Kind::Guided(nets.clone()), "guided:fixed");
    let mut value = of(Kind::Value(nets.clone()), "value:fixed");
    let mut rng = Rng::new(9);
    let (mut checked, mut overruled) = (0, 0);
    for _game in 0..40 {
        let (mut pos, mut mover) = (Position::initial(), 0usize);
        while pos.winner().is_none() {
            let roll = (0..4).map(|_| rng.below(2) as u8).sum::<u8>();
            let legal = pos.legal_moves(mover, roll);
            let mut piece = None;
            if legal != 0 {
                // By hand: a softmax over the legal pieces' logits only.
                let total: f32 = pieces_of(legal).map(|k| logits[k].exp()).sum();
                let log_probs = guided.policy_log_probs(&nets, &pos, mover, roll);
                for k in 0..7 {
                    let expected = if legal & (1 << k) != 0 {
                        logits[k] - total.ln()
                    } else {
                        0.0
                    };
                    assert!(
                        (log_probs[k] - expected).abs() < 1e-3,
                        "piece {k}: {log_probs:?}"
                    );
                }
                let values = value.value_of_moves(&nets, &pos, mover, roll);
                let mut best = (f32::NEG_INFINITY, 7);
                for k in pieces_of(pos.distinct_moves(mover, roll)) {
                    let score = values[k].expect("a value") + GUIDE_WEIGHT * log_probs[k];
                    if score > best.0 {
                        best = (score, k);
                    }
                }
                let chosen = guided.choose(&pos, mover, roll, legal, &mut rng);
                assert_eq!(chosen, best.1, "the best value plus prior");
                overruled += (chosen != value.choose(&pos, mover, roll, legal, &mut rng)) as usize;
                checked += 1;
                piece = Some(pieces_of(legal).next().expect("legal"));
            }
            (pos, mover) = advance(&pos, mover, roll, piece);
        }
    }
    assert!(
        checked > 1000 && overruled > 20 && overruled < checked / 2,
        "{checked} decisions, {overruled} decided by the prior"
    );
}
