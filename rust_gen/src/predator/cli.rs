//! `rust_gen predator ...`: the predator's subcommands.

use super::episode::Protocol;
use super::matchplay::play_match;
use super::nn::Transformer;
use super::players::PlayerSpec;
use super::task::{PredatorGenerator, Student, Teacher};
use crate::core::cli::{generate, thread_pool, usage_error, ShardArgs};
use clap::{Args, Subcommand, ValueEnum};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum PredatorCommand {
    /// Play EPISODES episodes driven by a teacher and write one shard (one sample per step).
    Generate(GenerateArgs),
    /// Write every step of one episode as JSON (positions, velocities, caught ids, actions), from
    /// an initial state (JSON: width, height, boids, predator) or a seeded evaluation episode.
    Trace(TraceArgs),
    /// Measure simulation steps/s, generator samples/s per teacher and inference time.
    Bench(super::bench::BenchArgs),
    /// Run a weight file on observations: JSON lines {"context": [2], "predator": [4], "boids":
    /// [[4], ...]} on standard input, one JSON line [ax, ay] per observation on standard output.
    Infer(InferArgs),
    /// Play players on the same evaluation episodes and print one JSON report (catch rates with
    /// 95% intervals, paired differences to the first player, speed).
    Match(MatchArgs),
}

pub fn run(command: PredatorCommand) -> ExitCode {
    match command {
        PredatorCommand::Generate(args) => generate_shard(args),
        PredatorCommand::Trace(args) => trace(args),
        PredatorCommand::Match(args) => play(args),
        PredatorCommand::Bench(args) => super::bench::run(args),
        PredatorCommand::Infer(args) => infer(args),
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ProtocolName {
    /// The training distribution: canvas, boid count and formation drawn per episode.
    Default,
    /// The old system's test: 12 boids, 400 x 300, 2500 steps, formations alternating.
    Legacy,
}

#[derive(Args)]
pub struct MatchArgs {
    /// Players, comma separated: still, random, pursuit, lead, planner, planner:KEY=VALUE:... (directions=N, chase=0|1, targets=N, horizon=N, replan=N, radius=PX, follow=0|1, terminal=time|distance; any of these), net:FILE (full thrust in the network's direction), net-raw:FILE (its output as it is).
    #[arg(long, value_delimiter = ',', required = true)]
    players: Vec<String>,
    /// Evaluation episodes (every player plays each of them).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    episodes: u64,
    #[arg(long, value_enum, default_value_t = ProtocolName::Default)]
    protocol: ProtocolName,
    /// Steps per episode of the default protocol.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// Most boids of the default protocol.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    max_boids: u32,
    /// Seed of the evaluation episodes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads; 0 means every core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn play(args: MatchArgs) -> ExitCode {
    let specs: Result<Vec<PlayerSpec>, String> = args
        .players
        .iter()
        .map(|p| PlayerSpec::parse(p).map_err(|e| format!("--players: {e}")))
        .collect();
    let specs = match specs {
        Ok(specs) => specs,
        Err(e) => return usage_error(e),
    };
    let protocol = match args.protocol {
        ProtocolName::Default => Protocol::Default {
            max_boids: args.max_boids,
            steps: args.steps,
        },
        ProtocolName::Legacy => Protocol::Legacy,
    };
    let report = thread_pool(args.threads)
        .install(|| play_match(&specs, &args.players, protocol, args.episodes, args.seed));
    println!(
        "{}",
        serde_json::to_string(&report).expect("a report serialises")
    );
    ExitCode::SUCCESS
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Episodes in this shard (at least 1).
    #[arg(long, env = "EPISODES", value_parser = clap::value_parser!(u32).range(1..))]
    episodes: u32,
    /// The teacher that labels every step and drives the episode: pursuit, or planner with
    /// optional settings as for the planner player (planner:replan=1:follow=0).
    #[arg(long, env = "TEACHER", default_value = "planner", value_parser = Teacher::parse)]
    teacher: Teacher,
    /// Steps per episode at most (an episode also ends when no boid is left).
    #[arg(long, env = "STEPS", default_value_t = 1500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    steps: u32,
    /// Most boids in an episode; the shard pads every sample's boids to this many.
    #[arg(long, env = "MAX_BOIDS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    max_boids: u32,
    /// A student network (our file, the browser file or its `.js` wrapper) that drives
    /// --student-share of the episodes, every step still labelled by the teacher.
    #[arg(long, env = "STUDENT")]
    student: Option<std::path::PathBuf>,
    /// The share of episodes the student drives (with --student).
    #[arg(long, env = "STUDENT_SHARE", default_value_t = 0.5, value_parser = share)]
    student_share: f64,
    #[command(flatten)]
    shard: ShardArgs,
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{text}' is not a share: expected a number in [0, 1]"
        )),
    }
}

fn generate_shard(args: GenerateArgs) -> ExitCode {
    let student = match &args.student {
        Some(path) => match Transformer::load(path) {
            Ok(net) => Some(Student {
                net: Arc::new(net),
                share: args.student_share,
            }),
            Err(e) => return usage_error(format!("--student: {e}")),
        },
        None => None,
    };
    let task = PredatorGenerator {
        episodes: args.episodes,
        teacher: args.teacher,
        steps: args.steps,
        max_boids: args.max_boids,
        student,
    };
    generate(&task, &args.shard, args.episodes, "episodes")
}

#[derive(Args)]
pub struct TraceArgs {
    /// The player: still, random, pursuit, lead, planner[:KEY=VALUE...], net:FILE or net-raw:FILE.
    #[arg(long)]
    player: String,
    /// A JSON file with the initial state ({"width", "height", "boids": [{"pos": {"x", "y"},
    /// "vel": {...}, "id"}], "predator": {"pos", "vel"}}); without it, --seed draws one.
    #[arg(long, conflicts_with = "seed")]
    state: Option<std::path::PathBuf>,
    /// Seed of an evaluation episode of --protocol (episode 0 of that seed).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = ProtocolName::Default)]
    protocol: ProtocolName,
    /// Steps to run at most.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    steps: u32,
    /// Most boids when drawing a state from --seed.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    max_boids: u32,
    /// Where to write the trace (default: standard output).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn trace(args: TraceArgs) -> ExitCode {
    use super::encode::Observation;
    use super::matchplay::EVAL_STREAM;
    use super::sim::State;
    use crate::core::Rng;
    let spec = match PlayerSpec::parse(&args.player) {
        Ok(spec) => spec,
        Err(e) => return usage_error(format!("--player: {e}")),
    };
    let protocol = match args.protocol {
        ProtocolName::Default => Protocol::Default {
            max_boids: args.max_boids,
            steps: args.steps,
        },
        ProtocolName::Legacy => Protocol::Legacy,
    };
    let start: State = match (&args.state, args.seed) {
        (Some(path), _) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => return usage_error(format!("--state '{}': {e}", path.display())),
            };
            match serde_json::from_str::<State>(&text) {
                Ok(state) if state.width > 0.0 && state.height > 0.0 => state,
                Ok(_) => {
                    return usage_error(format!(
                        "--state '{}': width and height must be positive",
                        path.display()
                    ))
                }
                Err(e) => {
                    return usage_error(format!("--state '{}': not a state: {e}", path.display()))
                }
            }
        }
        (None, Some(seed)) => {
            protocol.initial_state(0, &mut Rng::for_episode(seed, EVAL_STREAM, 0))
        }
        (None, None) => return usage_error("give --state FILE or --seed N".into()),
    };
    let mut player = spec.build(Rng::new(args.seed.unwrap_or(0)));
    let (mut state, mut obs, mut caught) = (start.clone(), Observation::default(), Vec::new());
    let (mut steps, mut total, mut seconds) = (Vec::new(), 0usize, 0.0);
    for _ in 0..args.steps {
        if state.boids.is_empty() {
            break;
        }
        let started = std::time::Instant::now();
        obs.update(&state);
        let action = player.act(&state, &obs);
        state.step_into(action, &mut caught);
        seconds += started.elapsed().as_secs_f64();
        total += caught.len();
        steps.push(serde_json::json!({"action": [action.0, action.1], "caught": caught, "boids": state.boids, "predator": state.predator}));
    }
    // `seconds`: the simulation and the player only, not the JSON.
    let out = serde_json::json!({"initial": start, "player": args.player, "caught": total, "seconds": seconds, "steps": steps});
    let text = serde_json::to_string(&out).expect("a trace serialises");
    match args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("error: --out '{}': {e}", path.display());
                return ExitCode::from(1);
            }
        }
        None => println!("{text}"),
    }
    ExitCode::SUCCESS
}

#[derive(Args)]
pub struct InferArgs {
    /// The weight file: ours, the browser file or its `.js` wrapper.
    #[arg(long)]
    model: std::path::PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ObservationLine {
    context: [f64; 2],
    predator: [f64; 4],
    boids: Vec<[f64; 4]>,
}

fn infer(args: InferArgs) -> ExitCode {
    use super::encode::Observation;
    use super::nn::{Scratch, Transformer};
    use std::io::{BufRead, Write};
    let net = match Transformer::load(&args.model) {
        Ok(net) => net,
        Err(e) => return usage_error(format!("--model: {e}")),
    };
    let (mut scratch, stdout) = (Scratch::default(), std::io::stdout());
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (number, line) in std::io::stdin().lock().lines().enumerate() {
        let parsed = line
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str::<ObservationLine>(&l).map_err(|e| e.to_string()));
        let obs = match parsed {
            Ok(o) => Observation {
                context: o.context,
                predator: o.predator,
                boids: o.boids,
            },
            Err(e) => {
                eprintln!("error: standard input, line {}: {e}", number + 1);
                return ExitCode::from(2);
            }
        };
        let action = net.forward(&obs, &mut scratch);
        if writeln!(out, "[{},{}]", action[0], action[1]).is_err() {
            return ExitCode::from(1);
        }
    }
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
