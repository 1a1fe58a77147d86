//! `quantrl`: train and evaluate agents from the command line.
//!
//! ```text
//! quantrl train [--env cartpole] [--config FILE.toml] [--seed N] [--steps N] [--out DIR] [--resume DIR]
//! quantrl eval --checkpoint DIR [--episodes N] [--seed N]
//! quantrl backtest --checkpoint DIR [--data FILE] [--out DIR]
//! quantrl walk-forward [--config FILE.toml] [--seeds N] [--steps N] [--out DIR]
//! ```
//!
//! `quantrl train` with no arguments runs the main job: recurrent PPO with a GRU on the
//! embedded S&P 500 panel, checkpoint selection on the validation span, and an out-of-sample
//! backtest against the baselines with a report and plots.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quantrl::algos::checkpoint::{load_model, write_atomic};
use quantrl::algos::policy::evaluate;
use quantrl::prelude::*;

mod job;
mod walk_forward;

#[derive(Parser)]
#[command(
    name = "quantrl",
    version,
    about = "Risk-aware reinforcement learning for trading, on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an agent (PPO) and write checkpoints, metrics and a summary. Without --env or
    /// --config: the main job on the embedded S&P 500 data (train, select, backtest, report).
    Train(TrainArgs),
    /// Evaluate a saved checkpoint with the deterministic policy.
    Eval(EvalArgs),
    /// Backtest a trading checkpoint out of sample against the baselines (report and plots).
    Backtest(BacktestArgs),
    /// Walk-forward evaluation on the embedded S&P 500 panel: train on a calendar window, test
    /// on the next, roll; several seeds; out-of-sample table, report and plots.
    WalkForward(WalkForwardArgs),
}

#[derive(Parser)]
struct WalkForwardArgs {
    /// Walk-forward TOML config (default: the built-in configs/walk_forward_sp500.toml).
    /// Unknown keys are errors.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run seeds 0..N instead of the config's `seeds`.
    #[arg(long)]
    seeds: Option<u64>,
    /// Training steps per window and seed. Overrides the config's `steps_per_window`.
    #[arg(long)]
    steps: Option<u64>,
    /// Output directory (default `runs/walk-forward-sp500`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not draw a progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Parser)]
struct BacktestArgs {
    /// Checkpoint directory (a run directory, its checkpoint/ or best/).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Close-price panel (CSV, gzip CSV or Parquet: a date column and one column per ticker
    /// of the training panel). Default: the embedded panel's test span (2017-2022).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory of the report (default: next to the checkpoint, `backtest/`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Parser)]
struct TrainArgs {
    /// Environment name (cartpole, cartpole-novel, invalid-action-discrete, sp500-regimes).
    /// Overrides the config's `env`.
    #[arg(long)]
    env: Option<String>,
    /// TOML config file (see configs/). Unknown keys are errors.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Master seed. Overrides the config's `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Environment steps to train for. Overrides the config's `total_steps`; with --resume,
    /// the new total budget.
    #[arg(long)]
    steps: Option<u64>,
    /// Output directory (default `runs/ENV-seedSEED`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run saved in this directory (a run directory or its checkpoint/).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Do not draw a progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Parser)]
struct EvalArgs {
    /// Checkpoint directory (a run directory or its checkpoint/).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Episodes to run.
    #[arg(long, default_value_t = 20)]
    episodes: usize,
    /// Seed of the evaluation environments.
    #[arg(long, default_value_t = 12345)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
        Command::WalkForward(args) => walk_forward(args),
        Command::Backtest(args) => {
            let device = Default::default();
            probe_backend(&device).and_then(|()| {
                job::backtest(&args.checkpoint, args.data.as_deref(), args.out, &device)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn walk_forward(args: WalkForwardArgs) -> Result<()> {
    let mut config = walk_forward::WalkForwardConfig::load(args.config.as_deref())?;
    if let Some(n) = args.seeds {
        config = config.with_seed_count(n)?;
    }
    if let Some(steps) = args.steps {
        config = config.with_steps(steps)?;
    }
    let device = Default::default();
    probe_backend(&device)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs/walk-forward-sp500"));
    walk_forward::run(config, out, args.quiet, device)
}

/// Start the backend with a tiny computation, so that a missing GPU driver is a clear error
/// instead of a panic deep inside the runtime (the CUDA runtime panics when `libcuda` is
/// absent).
fn probe_backend(device: &Device<DefaultBackend>) -> Result<()> {
    let message: Arc<Mutex<Option<String>>> = Arc::default();
    let sink = Arc::clone(&message);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let mut slot = sink.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(text);
    }));
    let ok = std::panic::catch_unwind(|| {
        Tensor::<DefaultBackend, 1>::zeros([1], device).into_data();
    })
    .is_ok();
    std::panic::set_hook(previous);
    if ok {
        return Ok(());
    }
    let detail = message
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    let first = detail.split(" - ").next().unwrap_or("").trim();
    bail!(
        "the `{}` backend could not start{}{}",
        quantrl::BACKEND_NAME,
        if first.is_empty() { "" } else { ": " },
        first
    )
}

/// Create the run directory `out`, write its `config.toml`, and open its `metrics.jsonl`.
pub(crate) fn prepare_run_dir(out: &Path, config: &TrainConfig) -> Result<MetricsWriter> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let config_text = toml::to_string_pretty(config).context("cannot serialize the config")?;
    write_atomic(&out.join("config.toml"), config_text.as_bytes())
        .with_context(|| format!("cannot write {}", out.join("config.toml").display()))?;
    Ok(MetricsWriter::append(&out.join("metrics.jsonl"))?)
}

/// The training progress bar (steps, rate, ETA), hidden with `quiet`.
pub(crate) fn progress_bar(total: u64, position: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    bar.set_position(position);
    bar
}

/// Print a line above the progress bar (a hidden bar, with no terminal or `--quiet`, swallows
/// `println`: print directly then).
pub(crate) fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// A run directory holds `checkpoint/`; accept either.
pub(crate) fn checkpoint_dir(path: &Path) -> PathBuf {
    let inner = path.join("checkpoint");
    if inner.is_dir() {
        inner
    } else {
        path.to_path_buf()
    }
}

fn load_config(args: &TrainArgs) -> Result<TrainConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            TrainConfig::from_toml(&text)
                .with_context(|| format!("in config file {}", path.display()))?
        }
        None => TrainConfig::default(),
    };
    if let Some(env) = &args.env {
        config.env = env.clone();
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(steps) = args.steps {
        config.total_steps = steps;
    }
    config.validate().context("invalid configuration")?;
    Ok(config)
}

fn train(args: TrainArgs) -> Result<()> {
    let device = Default::default();
    probe_backend(&device)?;
    // No environment and no config: the main job. A recurrent config or a checkpoint of the
    // main job's environment also runs it (training with validation, then the out-of-sample
    // backtest, report and plots).
    let (recurrent, main_job) = match &args.resume {
        Some(run) => {
            let state = quantrl::algos::checkpoint::read_state(&checkpoint_dir(run))
                .with_context(|| format!("cannot resume from {}", run.display()))?;
            if args.config.is_some() || args.env.is_some() || args.seed.is_some() {
                bail!(
                    "--resume continues the saved run with its own config; only --steps and --out may be given"
                );
            }
            let recurrent = state.config.policy.is_recurrent();
            (recurrent, recurrent && state.config.env == job::MAIN_ENV)
        }
        None if args.config.is_none() && args.env.is_none() => (true, true),
        None => {
            let config = load_config(&args)?;
            let recurrent = config.policy.is_recurrent();
            (recurrent, recurrent && config.env == job::MAIN_ENV)
        }
    };
    if main_job {
        let config = match (&args.resume, &args.config) {
            (None, Some(_)) => Some(load_config(&args)?),
            (None, None) => {
                let mut c = job::main_job_config()?;
                if let Some(seed) = args.seed {
                    c.seed = seed;
                }
                Some(c)
            }
            _ => None,
        };
        return job::run(
            config,
            args.out.clone(),
            args.resume.as_deref(),
            args.steps,
            args.quiet,
            device,
        );
    }
    if recurrent {
        train_with::<RecurrentActorCritic<DefaultAutodiffBackend>>(args, device)
    } else {
        train_with::<ActorCritic<DefaultAutodiffBackend>>(args, device)
    }
}

fn train_with<M>(args: TrainArgs, device: Device<DefaultAutodiffBackend>) -> Result<()>
where
    M: PolicyNetwork<DefaultAutodiffBackend> + AutodiffModule<DefaultAutodiffBackend>,
    M::InnerModule: PolicyNetwork<DefaultBackend>,
{
    let (mut ppo, out) = match &args.resume {
        Some(run) => {
            let ckpt = checkpoint_dir(run);
            let state = quantrl::algos::checkpoint::read_state(&ckpt)
                .with_context(|| format!("cannot resume from {}", run.display()))?;
            if args.config.is_some() || args.env.is_some() || args.seed.is_some() {
                bail!(
                    "--resume continues the saved run with its own config; only --steps and --out may be given"
                );
            }
            let env = make_env(registry_name(&state), state.config.ppo.n_envs)?;
            let ppo = Ppo::<DefaultAutodiffBackend, _, M>::resume(&ckpt, env, args.steps, &device)
                .with_context(|| format!("cannot resume from {}", ckpt.display()))?;
            let out = args.out.clone().unwrap_or_else(|| {
                if ckpt.ends_with("checkpoint") {
                    ckpt.parent().unwrap().to_path_buf()
                } else {
                    run.clone()
                }
            });
            (ppo, out)
        }
        None => {
            let config = load_config(&args)?;
            let env = make_env(&config.env, config.ppo.n_envs)?;
            let out = args.out.clone().unwrap_or_else(|| {
                PathBuf::from(format!("runs/{}-seed{}", config.env, config.seed))
            });
            (
                Ppo::<DefaultAutodiffBackend, _, M>::new(config, env, &device)?,
                out,
            )
        }
    };
    let config = ppo.config.clone();
    let mut metrics = prepare_run_dir(&out, &config)?;
    let mut eval_env = make_env(&config.env, 4)?;
    let ckpt = out.join("checkpoint");

    let total = config.total_steps;
    let bar = progress_bar(total, ppo.num_timesteps, args.quiet);
    println!(
        "training PPO on {} ({} envs) for {} steps, seed {}, backend {}; output in {}",
        ppo.env().name(),
        config.ppo.n_envs,
        total,
        config.seed,
        quantrl::BACKEND_NAME,
        out.display()
    );
    let start = Instant::now();
    let start_steps = ppo.num_timesteps;
    let mut report = |event: &TrainEvent| {
        let _ = metrics.on_event(event);
        match event {
            TrainEvent::Update(stats) => {
                bar.set_position(stats.timesteps);
                bar.set_message(format!("return {:.1}", stats.ep_return_mean));
            }
            TrainEvent::Eval(e) => {
                say(
                    &bar,
                    format!(
                        "  {:>8} steps  eval return {:.1} ± {:.1} over {} episodes",
                        e.timesteps, e.mean_return, e.std_return, e.episodes
                    ),
                );
            }
            TrainEvent::Checkpoint { .. } => {}
        }
        ControlFlow::Continue(())
    };
    let last_eval = ppo.learn_with(Some(&mut eval_env), Some(&ckpt), &mut report)?;
    bar.finish_and_clear();
    if let Some(e) = metrics.error.take() {
        eprintln!(
            "warning: some metrics could not be written to {}: {e}",
            metrics.path().display()
        );
    }
    let secs = start.elapsed().as_secs_f64();
    let steps = ppo.num_timesteps - start_steps;
    println!(
        "done: {} steps in {:.1} s ({:.0} steps/s incl. evaluation)",
        steps,
        secs,
        steps as f64 / secs.max(1e-9)
    );
    let (rolling, _) = ppo.recent_episodes();
    println!("  training return (last 100 episodes): {rolling:.1}");
    if let Some(e) = last_eval {
        println!(
            "  evaluation return: {:.1} ± {:.1} over {} episodes (deterministic)",
            e.mean_return, e.std_return, e.episodes
        );
    }
    println!("  checkpoint: {}", ckpt.display());
    println!("  metrics:    {}", metrics.path().display());
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let device = Default::default();
    probe_backend(&device)?;
    let ckpt = checkpoint_dir(&args.checkpoint);
    let context = || format!("cannot load checkpoint {}", args.checkpoint.display());
    let recurrent = quantrl::algos::checkpoint::read_state(&ckpt)
        .with_context(context)?
        .config
        .policy
        .is_recurrent();
    let (state, e) = if recurrent {
        eval_with::<RecurrentActorCritic<DefaultBackend>>(&ckpt, &args, &device)
    } else {
        eval_with::<ActorCritic<DefaultBackend>>(&ckpt, &args, &device)
    }
    .with_context(context)?;
    println!(
        "{} after {} steps: evaluation return {:.1} ± {:.1} over {} episodes (mean length {:.1})",
        registry_name(&state),
        state.num_timesteps,
        e.mean_return,
        e.std_return,
        e.episodes,
        e.mean_length
    );
    Ok(())
}

/// The registry name (`make_env`) of the environment a checkpoint was trained on.
///
/// `state.env_name` is what the environment calls itself (`CartPole-v1`, `Portfolio-v0`),
/// which identifies it when resuming but is not always a registry name: every trading
/// environment calls itself `Portfolio-v0` or `SingleAsset-v0` whatever its market. The
/// config's `env` is the name the run was built from, so it rebuilds the same environment.
fn registry_name(state: &CheckpointState) -> &str {
    &state.config.env
}

fn eval_with<M: PolicyNetwork<DefaultBackend>>(
    ckpt: &Path,
    args: &EvalArgs,
    device: &Device<DefaultBackend>,
) -> Result<(CheckpointState, EvalStats)> {
    let (state, model) = load_model::<DefaultBackend, M>(ckpt, device)?;
    let mut env = make_env(registry_name(&state), 4)?;
    let e = evaluate(&model, &mut env, args.episodes, args.seed, true, device)?;
    Ok((state, e))
}

use quantrl::algos::PolicyNetwork;
use quantrl::algos::checkpoint::CheckpointState;
use quantrl::burn::module::AutodiffModule;
use quantrl::burn::tensor::{Device, Tensor};
use quantrl::nets::{ActorCritic, RecurrentActorCritic};

#[cfg(test)]
mod tests {
    use std::path::Path;

    use quantrl::algos::TrainConfig;
    use quantrl::prelude::make_env;

    use crate::walk_forward::WalkForwardConfig;

    /// Every file in `configs/` parses, validates and fits what it names (so none can rot):
    /// training configs build their environment, whose actions are discrete, and walk-forward
    /// configs read their training config and have windows on the embedded data. README.md
    /// lists every file.
    #[test]
    fn every_config_in_configs_is_valid_and_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
                .unwrap();
        let dates = quantrl::data::embedded::sp500_panel().unwrap().dates;
        let mut checked = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                readme.contains(&format!("configs/{name}")),
                "README.md does not list configs/{name}"
            );
            if name.starts_with("walk_forward") {
                let c = WalkForwardConfig::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
                let windows = c.windows(&dates).unwrap_or_else(|e| panic!("{e}"));
                assert!(windows.len() >= 2, "{name}: {} windows", windows.len());
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                let c = TrainConfig::from_toml(&text)
                    .unwrap_or_else(|e| panic!("{name}: invalid: {e}"));
                let env = make_env(&c.env, c.ppo.n_envs)
                    .unwrap_or_else(|e| panic!("{name}: env `{}`: {e}", c.env));
                assert!(
                    env.action_space().n().is_some(),
                    "{name}: PPO here needs discrete actions"
                );
            }
            checked.push(name);
        }
        checked.sort();
        assert!(checked.len() >= 11, "only {checked:?}");
        // The built-in defaults are the files themselves.
        assert_eq!(
            WalkForwardConfig::load(None).unwrap(),
            WalkForwardConfig {
                source: crate::walk_forward::DEFAULT_CONFIG_NAME.into(),
                ..WalkForwardConfig::load(Some(&dir.join("walk_forward_sp500.toml"))).unwrap()
            }
        );
        assert_eq!(
            crate::job::main_job_config().unwrap(),
            TrainConfig::from_toml(&std::fs::read_to_string(dir.join("sp500_gru.toml")).unwrap())
                .unwrap()
        );
    }
}
