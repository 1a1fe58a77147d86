//! `quantrl walk-forward`: train on a calendar window of the embedded S&P 500 panel, test on
//! the window after it, roll; several seeds; the out-of-sample results stitched across windows
//! and aggregated over seeds with confidence intervals.
//!
//! The windows, the backtests of the test spans, the baselines on the same spans and the
//! aggregation are `quantrl_eval::walk_forward`'s; this module reads the TOML config, trains
//! one policy per window and seed with the training config it names, and writes the report.
//!
//! No look-ahead: a window's policy is trained on its training rows only; the features are
//! normalized with statistics of the rows before the first window's training end (so before
//! every test span); a test span is backtested from the row before it, as
//! `quantrl_eval::WalkForward::run` documents.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use quantrl::algos::checkpoint::write_atomic;
use quantrl::algos::{PolicyNetwork, Ppo, TrainConfig};
use quantrl::backtest::AgentPolicy;
use quantrl::burn::module::AutodiffModule;
use quantrl::burn::tensor::Device;
use quantrl::core::VecEnv;
use quantrl::data::{Date, embedded};
use quantrl::envs::trading::{PortfolioEnv, row_of_date, sp500_market, sp500_regimes_config};
use quantrl::eval::{
    BacktestResult, Report, RunManifest, WalkForward, Window, calendar_windows,
    format_walk_forward_table, market_hash, plots, report, with_embargo,
};
use quantrl::nets::{ActorCritic, RecurrentActorCritic};
use quantrl::{DefaultAutodiffBackend, DefaultBackend};
use serde::{Deserialize, Serialize};

use crate::job;

/// The built-in walk-forward config (`configs/walk_forward_sp500.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/walk_forward_sp500.toml");

/// How the built-in config is named in messages.
pub const DEFAULT_CONFIG_NAME: &str = "configs/walk_forward_sp500.toml (built in)";

/// The one format of walk-forward configs.
pub const FORMAT_VERSION: u32 = 1;

/// A walk-forward config file that cannot be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum WalkForwardConfigError {
    /// The file cannot be read.
    #[error("cannot read walk-forward config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (unknown or missing key, wrong type).
    #[error("walk-forward config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The TOML parser's message (it names the key, line and column).
        message: String,
    },
    /// A key with a value out of range or inconsistent with the others or the data.
    #[error("walk-forward config {path}: `{key}` = {value}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The key, dotted (`windows.train_years`).
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The training config it names cannot be read or is invalid.
    #[error("walk-forward config {path}: `train_config` = \"{train_config}\": {reason}")]
    TrainConfig {
        /// The walk-forward config file.
        path: String,
        /// The training config as named in the file.
        train_config: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A walk-forward config file (`configs/walk_forward_sp500.toml`); unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkForwardFile {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The training config (algorithm, network, optimizer; a TOML file like
    /// `configs/sp500_gru.toml`), relative to this file's directory. Its `env` must be
    /// `sp500-regimes`; its `total_steps` and `seed` are replaced per window.
    pub train_config: String,
    /// Seeds: every window is trained and tested once per seed.
    pub seeds: Vec<u64>,
    /// Environment steps of training per window and seed.
    pub steps_per_window: u64,
    /// Confidence level of the intervals across seeds.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// The calendar windows.
    pub windows: WindowSettings,
}

fn default_confidence() -> f64 {
    0.95
}

/// `[windows]`: train on `train_years` calendar years, test on the `test_years` after, roll
/// by `test_years`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSettings {
    /// Years of each training window.
    pub train_years: u32,
    /// Years of each test window (and the roll).
    pub test_years: u32,
    /// Trading days dropped from the end of every training window, between it and its test.
    #[serde(default)]
    pub embargo_days: usize,
    /// First date used (`YYYY-MM-DD`; default: the start of the data, 1990-01-02).
    #[serde(default)]
    pub first_date: Option<String>,
    /// Last date used (`YYYY-MM-DD`, inclusive; default: the end of the data, 2022-12-28).
    #[serde(default)]
    pub last_date: Option<String>,
}

/// A walk-forward config with its training config read, checked and resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkForwardConfig {
    /// Where it came from (a path, or [`DEFAULT_CONFIG_NAME`]).
    pub source: String,
    /// The file's settings.
    pub file: WalkForwardFile,
    /// The training config, `total_steps` set to `steps_per_window`.
    pub train: TrainConfig,
}

impl WalkForwardConfig {
    /// Read and check `path` (`None`: the built-in default). The training config is read
    /// relative to the file's directory; the built-in default names the built-in
    /// `sp500_gru.toml`.
    pub fn load(path: Option<&Path>) -> Result<Self, WalkForwardConfigError> {
        match path {
            None => Self::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, None),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| WalkForwardConfigError::Read {
                        path: p.display().to_string(),
                        source,
                    })?;
                let dir = p.parent().unwrap_or(Path::new("."));
                Self::parse(&text, &p.display().to_string(), Some(dir))
            }
        }
    }

    /// Parse and check `text` named `source`; `dir` is where `train_config` is looked up
    /// (`None`: only the built-in `sp500_gru.toml`).
    pub fn parse(
        text: &str,
        source: &str,
        dir: Option<&Path>,
    ) -> Result<Self, WalkForwardConfigError> {
        let file: WalkForwardFile =
            toml::from_str(text).map_err(|e| WalkForwardConfigError::Parse {
                path: source.to_string(),
                message: e.to_string().trim().to_string(),
            })?;
        let invalid =
            |key: &'static str, value: String, reason: &str| WalkForwardConfigError::Invalid {
                path: source.to_string(),
                key,
                value,
                reason: reason.to_string(),
            };
        if file.format_version != FORMAT_VERSION {
            return Err(invalid(
                "format_version",
                file.format_version.to_string(),
                &format!("this quantrl reads format_version {FORMAT_VERSION}"),
            ));
        }
        if file.seeds.is_empty() {
            return Err(invalid("seeds", "[]".into(), "give at least one seed"));
        }
        if let Some(k) = (1..file.seeds.len()).find(|&k| file.seeds[..k].contains(&file.seeds[k])) {
            return Err(invalid(
                "seeds",
                format!("{:?}", file.seeds),
                &format!("seed {} is listed twice", file.seeds[k]),
            ));
        }
        if file.steps_per_window == 0 {
            return Err(invalid(
                "steps_per_window",
                "0".into(),
                "must be at least 1",
            ));
        }
        if !(file.confidence > 0.0 && file.confidence < 1.0) {
            return Err(invalid(
                "confidence",
                file.confidence.to_string(),
                "must be between 0 and 1 (exclusive)",
            ));
        }
        let w = &file.windows;
        if w.train_years == 0 {
            return Err(invalid(
                "windows.train_years",
                "0".into(),
                "must be at least 1",
            ));
        }
        if w.test_years == 0 {
            return Err(invalid(
                "windows.test_years",
                "0".into(),
                "must be at least 1",
            ));
        }
        let date = |key: &'static str, v: &Option<String>| -> Result<Option<Date>, _> {
            v.as_ref()
                .map(|t| {
                    t.parse::<Date>()
                        .map_err(|e| invalid(key, format!("\"{t}\""), &e.to_string()))
                })
                .transpose()
        };
        let first = date("windows.first_date", &w.first_date)?;
        let last = date("windows.last_date", &w.last_date)?;
        if let (Some(a), Some(b)) = (first, last)
            && b <= a
        {
            return Err(invalid(
                "windows.last_date",
                format!("\"{b}\""),
                &format!("must be after windows.first_date ({a})"),
            ));
        }
        let train_err = |reason: String| WalkForwardConfigError::TrainConfig {
            path: source.to_string(),
            train_config: file.train_config.clone(),
            reason,
        };
        let train_text = match dir {
            Some(dir) => {
                let p = dir.join(&file.train_config);
                std::fs::read_to_string(&p)
                    .map_err(|e| train_err(format!("cannot read {}: {e}", p.display())))?
            }
            None if file.train_config == "sp500_gru.toml" => {
                include_str!("../../../configs/sp500_gru.toml").to_string()
            }
            None => {
                return Err(train_err(
                    "the built-in config can name only the built-in sp500_gru.toml".into(),
                ));
            }
        };
        let mut train =
            TrainConfig::from_toml(&train_text).map_err(|e| train_err(e.to_string()))?;
        if train.env != job::MAIN_ENV {
            return Err(train_err(format!(
                "env = \"{}\": the walk-forward trains on `{}`",
                train.env,
                job::MAIN_ENV
            )));
        }
        train.total_steps = file.steps_per_window;
        train.validate().map_err(|e| train_err(e.to_string()))?;
        Ok(Self {
            source: source.to_string(),
            file,
            train,
        })
    }

    /// Replace the seeds by `0..n` (`--seeds N`).
    pub fn with_seed_count(mut self, n: u64) -> Result<Self, WalkForwardConfigError> {
        if n == 0 {
            return Err(WalkForwardConfigError::Invalid {
                path: "--seeds".into(),
                key: "seeds",
                value: "0".into(),
                reason: "give at least one seed".into(),
            });
        }
        self.file.seeds = (0..n).collect();
        Ok(self)
    }

    /// Replace the training steps per window (`--steps N`).
    pub fn with_steps(mut self, steps: u64) -> Result<Self, WalkForwardConfigError> {
        if steps == 0 {
            return Err(WalkForwardConfigError::Invalid {
                path: "--steps".into(),
                key: "steps_per_window",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        self.file.steps_per_window = steps;
        self.train.total_steps = steps;
        Ok(self)
    }

    /// The windows over the market rows with these `dates`: calendar windows of the span
    /// from `windows.first_date` to `windows.last_date`, with the embargo applied. An error
    /// names the config when no window fits.
    pub fn windows(&self, dates: &[Date]) -> Result<Vec<Window>, WalkForwardConfigError> {
        let w = &self.file.windows;
        let parse = |d: &Option<String>| d.as_ref().and_then(|t| t.parse::<Date>().ok());
        let lo = parse(&w.first_date).map_or(0, |d| row_of_date(dates, d));
        let hi = parse(&w.last_date).map_or(dates.len(), |d| dates.partition_point(|x| *x <= d));
        let bad = |e: String| WalkForwardConfigError::Invalid {
            path: self.source.clone(),
            key: "windows",
            value: format!(
                "{{ train_years = {}, test_years = {}, embargo_days = {} }}",
                w.train_years, w.test_years, w.embargo_days
            ),
            reason: e,
        };
        if hi <= lo {
            return Err(bad(format!(
                "no data between first_date and last_date (the data runs {} .. {})",
                dates[0],
                dates[dates.len() - 1]
            )));
        }
        let windows = calendar_windows(&dates[lo..hi], 12 * w.train_years, 12 * w.test_years)
            .map_err(|e| bad(format!("{e} ({} .. {})", dates[lo], dates[hi - 1])))?
            .into_iter()
            .map(|w| Window {
                index: w.index,
                train: w.train.start + lo..w.train.end + lo,
                test: w.test.start + lo..w.test.end + lo,
            })
            .collect();
        with_embargo(windows, w.embargo_days, dates.len()).map_err(|e| bad(e.to_string()))
    }
}

/// Run the walk-forward of `config`, writing into `out`; `quiet` hides the progress bar.
pub fn run(
    config: WalkForwardConfig,
    out: PathBuf,
    quiet: bool,
    device: Device<DefaultAutodiffBackend>,
) -> Result<()> {
    if config.train.policy.is_recurrent() {
        run_with::<RecurrentActorCritic<DefaultAutodiffBackend>>(config, out, quiet, device)
    } else {
        run_with::<ActorCritic<DefaultAutodiffBackend>>(config, out, quiet, device)
    }
}

fn run_with<M>(
    config: WalkForwardConfig,
    out: PathBuf,
    quiet: bool,
    device: Device<DefaultAutodiffBackend>,
) -> Result<()>
where
    M: PolicyNetwork<DefaultAutodiffBackend> + AutodiffModule<DefaultAutodiffBackend>,
    M::InnerModule: PolicyNetwork<DefaultBackend>,
{
    let dates = embedded::sp500_panel()?.dates;
    let windows = config.windows(&dates)?;
    // Features normalized with the rows before the first training window ends: statistics of
    // data before every test span, one market for all windows.
    let (market, _) = sp500_market(dates[windows[0].train.end])
        .context("cannot build the embedded S&P 500 market")?;
    let seeds = config.file.seeds.clone();
    let steps = config.file.steps_per_window;
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let resolved = serde_json::json!({
        "source": config.source,
        "walk_forward": config.file,
        "train": config.train,
    });
    // The settings as run (`--seeds` and `--steps` applied), to rerun with `--config`.
    for (name, text) in [
        (
            "walk_forward.toml",
            toml::to_string_pretty(&WalkForwardFile {
                train_config: "train_config.toml".into(),
                ..config.file.clone()
            }),
        ),
        ("train_config.toml", toml::to_string_pretty(&config.train)),
    ] {
        let text = text.context("cannot serialize the config")?;
        let path = out.join(name);
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

    let probe = PortfolioEnv::new(
        market.clone(),
        sp500_regimes_config(1, windows[0].train.clone()),
    )?;
    let obs_dim = probe.observation_space().flat_dim();
    let n_actions = probe
        .action_space()
        .n()
        .context("the walk-forward's environment has discrete actions")?;
    let label = job::agent_label(&config.train);
    println!(
        "walk-forward: {label} on the embedded S&P 500 panel ({} stocks, 16 regimes), {} windows x {} seeds x {steps} steps, backend {}; config {}; output in {}",
        market.n_assets(),
        windows.len(),
        seeds.len(),
        quantrl::BACKEND_NAME,
        config.source,
        out.display()
    );
    for w in &windows {
        println!(
            "  window {}: train {} .. {} ({} rows), test {} .. {} ({} rows)",
            w.index,
            dates[w.train.start],
            dates[w.train.end - 1],
            w.train.len(),
            dates[w.test.start],
            dates[w.test.end - 1],
            w.test.len()
        );
    }

    // Train one policy per window and seed, on the window's training rows only.
    let start = Instant::now();
    let total = windows.len() as u64 * seeds.len() as u64 * steps;
    let bar = crate::progress_bar(total, 0, quiet);
    let mut models: Vec<M::InnerModule> = Vec::with_capacity(windows.len() * seeds.len());
    let mut done = 0u64;
    for w in &windows {
        for &seed in &seeds {
            let train = TrainConfig {
                seed,
                ..config.train.clone()
            };
            let env = PortfolioEnv::new(
                market.clone(),
                sp500_regimes_config(train.ppo.n_envs, w.train.clone()),
            )?;
            let run_dir = out.join(format!("window{}-seed{seed}", w.index));
            let mut metrics = crate::prepare_run_dir(&run_dir, &train)?;
            let mut ppo = Ppo::<DefaultAutodiffBackend, _, M>::new(train, env, &device)?;
            job::train_loop(&mut ppo, &mut metrics, |_, stats| {
                bar.set_position(done + stats.timesteps);
                bar.set_message(format!(
                    "window {} seed {seed}: return {:.3}",
                    w.index, stats.ep_return_mean
                ));
                Ok(())
            })?;
            done += ppo.num_timesteps;
            ppo.save_checkpoint(&run_dir.join("checkpoint"))?;
            let (recent, _) = ppo.recent_episodes();
            crate::say(
                &bar,
                format!(
                    "  window {} seed {seed}: trained {} steps, {}",
                    w.index,
                    ppo.num_timesteps,
                    if recent.is_finite() {
                        format!("training return {recent:.3} (last 100 episodes)")
                    } else {
                        "no training episode finished yet".to_string()
                    }
                ),
            );
            models.push(ppo.model().valid());
        }
    }
    bar.finish_and_clear();
    let train_secs = start.elapsed().as_secs_f64();

    // Test every window's policies on the window's test span, the baselines on the same
    // spans; stitch and aggregate.
    // `Copy` on the CPU backends, not on CUDA's.
    #[allow(clippy::clone_on_copy)]
    let inner_device: Device<DefaultBackend> = device.clone();
    let backtester = job::backtester(&market, &dates, 0..market.n_steps())?;
    let walk_forward = WalkForward {
        windows: windows.clone(),
        seeds: seeds.clone(),
        baselines: Some(job::sp500_baselines()?),
        confidence: config.file.confidence,
    };
    let result = walk_forward.run(&backtester, |w, seed| {
        let k = seeds
            .iter()
            .position(|s| *s == seed)
            .ok_or_else(|| format!("seed {seed} was not trained"))?;
        let model = models
            .get(w.index * seeds.len() + k)
            .ok_or_else(|| format!("window {} was not trained", w.index))?;
        Ok::<_, String>(AgentPolicy::new(
            model,
            label.as_str(),
            obs_dim,
            n_actions,
            &inner_device,
        ))
    })?;

    // The report: the walk-forward, and as its side-by-side rows the most recent window (each
    // seed's policy and the baselines on that test span).
    let last = windows.len() - 1;
    let mut results: Vec<BacktestResult> = result
        .runs
        .iter()
        .filter(|r| r.window == last)
        .map(|r| BacktestResult {
            label: format!("{label} seed {}", r.seed),
            ..r.result.clone()
        })
        .collect();
    results.extend(
        result
            .baseline_runs
            .iter()
            .filter(|r| r.window == last)
            .map(|r| r.result.clone()),
    );
    let manifest = RunManifest::new(resolved, market_hash(&market), seeds.clone())
        .with_crate_version("quantrl-cli", env!("CARGO_PKG_VERSION"));
    let report = Report::new(manifest, results, Some("S&P 500 index"))?.with_walk_forward(result);
    println!(
        "\ntrained {} policies in {train_secs:.1} s; out-of-sample results (costs on; the \
         agent: mean over seeds [{:.0}% interval]):\n",
        windows.len() * seeds.len(),
        100.0 * config.file.confidence
    );
    if let Some(wf) = &report.walk_forward {
        print!("{}", format_walk_forward_table(wf));
    }
    let report_dir = out.join("report");
    let files = report::write_all(&report_dir, &report)?;
    let pngs = plots::write_all(&report_dir, &report)?;
    println!(
        "\nwrote {} report files and {} plots to {} in {:.1} s in all",
        files.len(),
        pngs.len(),
        report_dir.display(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "  per window and seed (config, metrics, checkpoint): {}/window<k>-seed<s>/",
        out.display()
    );
    Ok(())
}
