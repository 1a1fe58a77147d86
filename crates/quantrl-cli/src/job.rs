//! The main job: train a recurrent agent on the embedded S&P 500 panel, keep the checkpoint with
//! the best validation result, backtest it out of sample against the baselines, write the report
//! and plots.
//!
//! Split (dates of the embedded data): training 1990-2012, validation 2013-2016, test
//! 2017-2022. Features are normalized with training-span statistics only. Every backtest uses
//! the training environment's costs; only the span changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use quantrl::algos::checkpoint::{load_model, write_atomic};
use quantrl::algos::{
    Callback, MetricsWriter, PolicyNetwork, Ppo, RecurrentPpo, TrainConfig, TrainEvent, UpdateStats,
};
use quantrl::backtest::AgentPolicy;
use quantrl::burn::module::AutodiffModule;
use quantrl::burn::tensor::Device;
use quantrl::core::VecEnv;
use quantrl::data::Date;
use quantrl::envs::trading::{
    Market, PortfolioEnv, Sp500Split, default_test_start, default_validation_start,
    sp500_regimes_config, sp500_split,
};
use quantrl::eval::{
    BacktestResult, Backtester, BaselineConfig, EnvSpec, IndexSeries, Report, RunManifest,
    format_table, market_hash, plots, report, standard_set,
};
use quantrl::nets::RecurrentActorCritic;
use quantrl::{DefaultAutodiffBackend, DefaultBackend};

/// The environment name of the main job.
pub const MAIN_ENV: &str = "sp500-regimes";

/// The main job's configuration (`configs/sp500_gru.toml`).
pub fn main_job_config() -> Result<TrainConfig> {
    TrainConfig::from_toml(include_str!("../../../configs/sp500_gru.toml"))
        .context("the built-in main-job config (configs/sp500_gru.toml) is invalid")
}

type InnerNet = RecurrentActorCritic<DefaultBackend>;

/// Where the main job writes.
pub struct JobPaths {
    /// The run directory.
    pub out: PathBuf,
    /// The last state of training (for `--resume`).
    pub checkpoint: PathBuf,
    /// The checkpoint with the best validation result.
    pub best: PathBuf,
    /// Report, tables and plots.
    pub report: PathBuf,
}

impl JobPaths {
    fn new(out: PathBuf) -> Self {
        Self {
            checkpoint: out.join("checkpoint"),
            best: out.join("best"),
            report: out.join("report"),
            out,
        }
    }
}

/// A backtest of the main job's environment on `rows` of `market`.
pub(crate) fn backtester(
    market: &Arc<Market>,
    dates: &[Date],
    rows: std::ops::Range<usize>,
) -> Result<Backtester> {
    Ok(Backtester::new(
        market.clone(),
        EnvSpec::Portfolio(sp500_regimes_config(1, rows)),
    )?
    .with_dates(dates.to_vec())?)
}

/// The greedy policy of `model` backtested by `bt`, labelled `label`.
fn backtest_model<M: PolicyNetwork<DefaultBackend>>(
    model: &M,
    bt: &Backtester,
    label: &str,
    obs_dim: usize,
    n_actions: usize,
    device: &Device<DefaultBackend>,
) -> Result<BacktestResult> {
    let mut policy = AgentPolicy::new(model, label, obs_dim, n_actions, device);
    Ok(bt.run(&mut policy)?)
}

/// The baselines of the S&P 500 jobs: cash, buy-and-hold, monthly-rebalanced equal weight
/// and the index (no oracle: it is the perfect-foresight bound of a synthetic market).
pub(crate) fn sp500_baselines() -> Result<BaselineConfig> {
    Ok(BaselineConfig {
        index: Some(IndexSeries::sp500()?),
        oracle: false,
        ..BaselineConfig::default()
    })
}

/// Train `ppo` to its step budget one PPO iteration at a time: every update goes to
/// `metrics`, then `after_update` runs (progress display, periodic validation).
pub(crate) fn train_loop<E, M>(
    ppo: &mut Ppo<DefaultAutodiffBackend, E, M>,
    metrics: &mut MetricsWriter,
    mut after_update: impl FnMut(&mut Ppo<DefaultAutodiffBackend, E, M>, &UpdateStats) -> Result<()>,
) -> Result<()>
where
    E: VecEnv,
    M: PolicyNetwork<DefaultAutodiffBackend> + AutodiffModule<DefaultAutodiffBackend>,
    M::InnerModule: PolicyNetwork<DefaultBackend>,
{
    while !ppo.is_done() {
        let stats = ppo.train_iteration()?;
        let _ = metrics.on_event(&TrainEvent::Update(stats.clone()));
        after_update(ppo, &stats)?;
    }
    Ok(())
}

/// The label of a trained policy in reports: `agent (GRU PPO)`, `agent (MLP PPO)`, and with a
/// distributional critic `agent (GRU dist-PPO, CVaR)`.
pub(crate) fn agent_label(config: &TrainConfig) -> String {
    let net = match &config.policy.encoder {
        Some(e) => format!("{:?}", e.kind).to_uppercase(),
        None => "MLP".to_string(),
    };
    match &config.ppo.distributional {
        Some(d) if d.cvar.is_some() => format!("agent ({net} dist-PPO, CVaR)"),
        Some(_) => format!("agent ({net} dist-PPO)"),
        None => format!("agent ({net} PPO)"),
    }
}

/// Run the main job. `resume` continues a run directory; `quiet` hides the progress bar.
pub fn run(
    config: Option<TrainConfig>,
    out: Option<PathBuf>,
    resume: Option<&Path>,
    steps: Option<u64>,
    quiet: bool,
    device: Device<DefaultAutodiffBackend>,
) -> Result<()> {
    let split = sp500_split(default_validation_start(), default_test_start())
        .context("cannot split the embedded S&P 500 data")?;
    let make_train_env = |n: usize| -> Result<PortfolioEnv> {
        Ok(PortfolioEnv::new(
            split.market.clone(),
            sp500_regimes_config(n, split.train.clone()),
        )?)
    };
    let (mut ppo, paths) = match resume {
        Some(run_dir) => {
            let paths = JobPaths::new(out.unwrap_or_else(|| run_dir.to_path_buf()));
            let ckpt = crate::checkpoint_dir(run_dir);
            let state = quantrl::algos::checkpoint::read_state(&ckpt)
                .with_context(|| format!("cannot resume from {}", run_dir.display()))?;
            let env = make_train_env(state.config.ppo.n_envs)?;
            let ppo = RecurrentPpo::<DefaultAutodiffBackend, _>::resume(&ckpt, env, steps, &device)
                .with_context(|| format!("cannot resume from {}", ckpt.display()))?;
            (ppo, paths)
        }
        None => {
            let mut config = config.map_or_else(main_job_config, Ok)?;
            if let Some(s) = steps {
                config.total_steps = s;
            }
            config.validate().context("invalid configuration")?;
            if config.env != MAIN_ENV {
                bail!("the main job trains on `{MAIN_ENV}`, not `{}`", config.env);
            }
            if !config.policy.is_recurrent() {
                bail!("the main job trains a recurrent policy: set [policy.encoder] in the config");
            }
            let env = make_train_env(config.ppo.n_envs)?;
            let out = out
                .unwrap_or_else(|| PathBuf::from(format!("runs/{MAIN_ENV}-seed{}", config.seed)));
            (
                RecurrentPpo::<DefaultAutodiffBackend, _>::new(config, env, &device)?,
                JobPaths::new(out),
            )
        }
    };
    let config = ppo.config.clone();
    let mut metrics = crate::prepare_run_dir(&paths.out, &config)?;
    let obs_dim = ppo.env().observation_space().flat_dim();
    let n_actions = ppo
        .env()
        .action_space()
        .n()
        .context("the main job's environment has discrete actions")?;
    // `Copy` on the CPU backends, not on CUDA's.
    #[allow(clippy::clone_on_copy)]
    let inner_device: Device<DefaultBackend> = device.clone();
    let validation = backtester(&split.market, &split.dates, split.validation.clone())?;
    let test = backtester(&split.market, &split.dates, split.test.clone())?;
    let date = |row: usize| split.dates[row.min(split.dates.len() - 1)].to_string();
    println!(
        "main job: recurrent PPO ({:?} {}) on the embedded S&P 500 panel ({} stocks, 16 regimes), {} steps, seed {}, backend {}",
        config
            .policy
            .encoder
            .as_ref()
            .map(|e| e.kind)
            .expect("recurrent"),
        config.policy.encoder.as_ref().map_or(0, |e| e.hidden),
        split.market.n_assets(),
        config.total_steps,
        config.seed,
        quantrl::BACKEND_NAME,
    );
    println!(
        "  train {} .. {}, validation {} .. {}, test {} .. {}; output in {}",
        date(split.train.start),
        date(split.train.end - 1),
        date(split.validation.start),
        date(split.validation.end - 1),
        date(split.test.start),
        date(split.test.end - 1),
        paths.out.display()
    );

    // Train, validating every `eval.every` steps; the best validation Sharpe is kept.
    let bar = crate::progress_bar(config.total_steps, ppo.num_timesteps, quiet);
    let say = |line: String| crate::say(&bar, line);
    let every = config.eval.every.max(1);
    let mut next_validation = quantrl::algos::next_multiple_after(ppo.num_timesteps, every);
    let mut best: Option<(f64, u64)> = read_best(&paths.best);
    let start = Instant::now();
    let start_steps = ppo.num_timesteps;
    train_loop(&mut ppo, &mut metrics, |ppo, stats| {
        bar.set_position(stats.timesteps);
        bar.set_message(format!("return {:.3}", stats.ep_return_mean));
        if ppo.num_timesteps >= next_validation || ppo.is_done() {
            next_validation = quantrl::algos::next_multiple_after(ppo.num_timesteps, every);
            let model = ppo.model().valid();
            let result = backtest_model(
                &model,
                &validation,
                "agent",
                obs_dim,
                n_actions,
                &inner_device,
            )?;
            let sharpe = result.metrics.sharpe_ratio;
            let improved = sharpe.is_finite() && best.is_none_or(|(b, _)| sharpe > b);
            say(format!(
                "  {:>8} steps  validation 2013-2016: Sharpe {:.2}, annual return {:.1}%, max drawdown {:.1}%{}",
                ppo.num_timesteps,
                sharpe,
                100.0 * result.metrics.annual_return,
                100.0 * result.metrics.max_drawdown,
                if improved {
                    "  (best so far: kept)"
                } else {
                    ""
                }
            ));
            if improved {
                ppo.save_checkpoint(&paths.best)?;
                best = Some((sharpe, ppo.num_timesteps));
                write_atomic(
                    &paths.best.join("validation.json"),
                    serde_json::json!({"sharpe_ratio": sharpe, "timesteps": ppo.num_timesteps})
                        .to_string()
                        .as_bytes(),
                )?;
            }
        }
        Ok(())
    })?;
    ppo.save_checkpoint(&paths.checkpoint)?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let steps_done = ppo.num_timesteps - start_steps;
    println!(
        "trained {steps_done} steps in {secs:.1} s ({:.0} steps/s incl. validation)",
        steps_done as f64 / secs.max(1e-9)
    );

    // Out-of-sample test of the selected checkpoint against the baselines.
    let (chosen, label) = match best {
        Some((sharpe, at)) => {
            println!("selected the checkpoint of step {at} (validation Sharpe {sharpe:.2})");
            (paths.best.clone(), agent_label(&config))
        }
        None => {
            println!("no validation result was finite: testing the last checkpoint");
            (
                paths.checkpoint.clone(),
                agent_label(&config).replace(')', ", last)"),
            )
        }
    };
    let (_, model) = load_model::<DefaultBackend, InnerNet>(&chosen, &inner_device)
        .with_context(|| format!("cannot load the selected checkpoint {}", chosen.display()))?;
    let mut results = vec![backtest_model(
        &model,
        &test,
        &label,
        obs_dim,
        n_actions,
        &inner_device,
    )?];
    results.extend(standard_set(&test, &sp500_baselines()?)?);
    let manifest = RunManifest::new(
        serde_json::to_value(&config)?,
        market_hash(&split.market),
        vec![config.seed],
    )
    .with_crate_version("quantrl-cli", env!("CARGO_PKG_VERSION"));
    let report = Report::new(manifest, results, Some("S&P 500 index"))?;
    println!(
        "\nout of sample {} .. {} (costs on, same split and costs for every row):",
        date(split.test.start),
        date(split.test.end - 1)
    );
    print!("{}", format_table(&report.metrics));
    let files = report::write_all(&paths.report, &report)?;
    let pngs = plots::write_all(&paths.report, &report)?;
    if let Some(e) = metrics.error.take() {
        eprintln!(
            "warning: some metrics could not be written to {}: {e}",
            metrics.path().display()
        );
    }
    println!(
        "\nwrote {} report files and {} plots to {}",
        files.len(),
        pngs.len(),
        paths.report.display()
    );
    println!("  checkpoint (resume): {}", paths.checkpoint.display());
    println!("  best checkpoint:     {}", paths.best.display());
    Ok(())
}

/// The validation Sharpe and step of a previous run's best checkpoint (when resuming).
fn read_best(dir: &Path) -> Option<(f64, u64)> {
    let text = std::fs::read_to_string(dir.join("validation.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((
        v.get("sharpe_ratio")?.as_f64()?,
        v.get("timesteps")?.as_u64()?,
    ))
}

/// `quantrl backtest`: the checkpoint's policy out of sample against the baselines, on the
/// default test span (2017-2022) or on the close panel in `data` (CSV or Parquet, a date
/// column and one column per ticker of the training panel; features built and normalized
/// exactly as in training, with the training span's statistics).
pub fn backtest(
    checkpoint: &Path,
    data: Option<&Path>,
    out: Option<PathBuf>,
    device: &Device<DefaultBackend>,
) -> Result<()> {
    let ckpt = crate::checkpoint_dir(checkpoint);
    let state = quantrl::algos::checkpoint::read_state(&ckpt)
        .with_context(|| format!("cannot load checkpoint {}", checkpoint.display()))?;
    if state.config.env != MAIN_ENV {
        bail!(
            "checkpoint {} was trained on `{}`, which is not a trading environment; \
             `quantrl backtest` needs a checkpoint trained on `{MAIN_ENV}`",
            checkpoint.display(),
            state.config.env
        );
    }
    if !state.config.policy.is_recurrent() {
        bail!(
            "checkpoint {} holds a feed-forward policy; `quantrl backtest` runs the recurrent \
             policies of the main job",
            checkpoint.display()
        );
    }
    let (_, model) = load_model::<DefaultBackend, InnerNet>(&ckpt, device)
        .with_context(|| format!("cannot load checkpoint {}", checkpoint.display()))?;
    let split = sp500_split(default_validation_start(), default_test_start())
        .context("cannot split the embedded S&P 500 data")?;
    let (market, dates, rows, index, source) = match data {
        None => (
            split.market.clone(),
            split.dates.clone(),
            split.test.clone(),
            Some(IndexSeries::sp500()?),
            "the embedded S&P 500 panel".to_string(),
        ),
        Some(path) => {
            let (market, dates) = market_from_file(path, &split)?;
            let n = dates.len();
            (market, dates, 0..n, None, path.display().to_string())
        }
    };
    let obs_dim = state.obs_dim;
    let bt = backtester(&market, &dates, rows.clone())?;
    let space = bt.action_space()?;
    if space.n() != Some(state.n_actions) {
        bail!(
            "the checkpoint has {} actions but the environment's action space is {space}",
            state.n_actions
        );
    }
    let mut results = vec![backtest_model(
        &model,
        &bt,
        &agent_label(&state.config),
        obs_dim,
        state.n_actions,
        device,
    )?];
    let baselines = BaselineConfig {
        index,
        oracle: false,
        ..BaselineConfig::default()
    };
    results.extend(standard_set(&bt, &baselines)?);
    let manifest = RunManifest::new(
        serde_json::json!({"checkpoint": ckpt.display().to_string(), "data": source, "config": state.config}),
        market_hash(&market),
        vec![state.config.seed],
    )
    .with_crate_version("quantrl-cli", env!("CARGO_PKG_VERSION"));
    let benchmark = if baselines.index.is_some() {
        "S&P 500 index"
    } else {
        "buy-and-hold"
    };
    let report = Report::new(manifest, results, Some(benchmark))?;
    let first = bt.first_row().min(dates.len() - 1);
    println!(
        "backtest of {} on {source}, {} .. {} (costs on):",
        ckpt.display(),
        dates[first],
        dates[rows.end - 1]
    );
    print!("{}", format_table(&report.metrics));
    let out = out.unwrap_or_else(|| {
        ckpt.parent()
            .map_or_else(|| PathBuf::from("backtest"), |p| p.join("backtest"))
    });
    let files = report::write_all(&out, &report)?;
    let pngs = plots::write_all(&out, &report)?;
    println!(
        "wrote {} report files and {} plots to {}",
        files.len(),
        pngs.len(),
        out.display()
    );
    Ok(())
}

/// A market from a close-panel file with the training panel's tickers, featurized and
/// normalized as in training.
fn market_from_file(
    path: &Path,
    split: &Sp500Split,
) -> Result<(
    std::sync::Arc<quantrl::envs::trading::Market>,
    Vec<quantrl::data::Date>,
)> {
    use quantrl::data::{FeatureConfig, LoadOptions, embedded, featurize_panel, load_panel};
    let panel = load_panel(path, &LoadOptions::default())
        .with_context(|| format!("cannot load market data from {}", path.display()))?;
    let train_panel = embedded::sp500_panel()?;
    if panel.tickers != train_panel.tickers {
        let missing: Vec<&String> = train_panel
            .tickers
            .iter()
            .filter(|t| !panel.tickers.contains(t))
            .collect();
        bail!(
            "{}: the policy was trained on the tickers {:?} in that order; the file has {:?}{}",
            path.display(),
            train_panel.tickers,
            panel.tickers,
            if missing.is_empty() {
                String::new()
            } else {
                format!(" (missing {missing:?})")
            }
        );
    }
    let config = FeatureConfig::default();
    let train_features = featurize_panel(&train_panel, &config, None)?;
    let (_, normalizer) = train_features.normalized(split.train.clone())?;
    let mut features = featurize_panel(&panel, &config, None)
        .with_context(|| format!("cannot build features from {}", path.display()))?;
    normalizer.transform_in_place(&mut features.values)?;
    let market = quantrl::envs::trading::market_from_panel(&panel, &features)?;
    Ok((Arc::new(market), panel.dates.clone()))
}
