//! What the experiments share: synthetic single-asset markets, training and evaluation on
//! the trading environment, statistics, and writing a table into `docs/EXPERIMENTS.md`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use quantrl_algos::{EvalConfig, PolicyConfig, TrainConfig, policy::evaluate};
use quantrl_core::{Rng, Schedule, VecEnv};
use quantrl_envs::trading::{
    CostModel, Market, PositionActions, SingleAssetConfig, SingleAssetEnv, TradingConfig,
};
use quantrl_nets::{Activation, ActorCritic};

/// The CPU backend every experiment trains on.
pub type B = Autodiff<NdArray<f32>>;

/// A synthetic single-asset market: `log_returns[k] = ln(close[k + 1] / close[k])`, one
/// feature row per bar, an optional regime label per bar.
pub struct SyntheticMarket {
    /// Log returns, one fewer than bars.
    pub log_returns: Vec<f64>,
    /// Feature names.
    pub names: Vec<String>,
    /// Features, `[bars * names.len()]` row-major.
    pub features: Vec<f32>,
    /// Regime label per bar.
    pub regimes: Option<Vec<usize>>,
}

impl SyntheticMarket {
    /// The environment's market: closes from the returns (starting at 100), the features,
    /// the labels.
    pub fn market(&self) -> Arc<Market> {
        let mut close = Vec::with_capacity(self.log_returns.len() + 1);
        let mut p = 100f64.ln();
        close.push(100.0);
        for r in &self.log_returns {
            p += r;
            close.push(p.exp());
        }
        let mut m = Market::from_close(1, close)
            .unwrap()
            .with_features(self.names.clone(), self.features.clone(), 0)
            .unwrap();
        if let Some(r) = &self.regimes {
            m = m.with_regimes(r.clone()).unwrap();
        }
        Arc::new(m)
    }
}

/// Position levels, costs (1 bp fee, 1 bp half-spread, no impact), window 1, episodes of
/// `episode_len` bars starting at random rows.
pub fn env(
    market: Arc<Market>,
    num_envs: usize,
    episode_len: usize,
    levels: Vec<f64>,
) -> SingleAssetEnv {
    SingleAssetEnv::new(
        market,
        SingleAssetConfig {
            trading: TradingConfig {
                num_envs,
                window: 1,
                episode_len: Some(episode_len),
                costs: CostModel {
                    impact_coef: 0.0,
                    impact_fallback_bps: 0.0,
                    ..Default::default()
                },
                ruin_nav_fraction: 0.05,
                ..Default::default()
            },
            actions: PositionActions::Levels { levels },
        },
    )
    .unwrap()
}

/// A small PPO configuration for the experiments (the caller sets the options).
pub fn base_config(seed: u64, total_steps: u64) -> TrainConfig {
    let mut c = TrainConfig {
        env: "synthetic".into(),
        seed,
        total_steps,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        policy: PolicyConfig {
            hidden: vec![32, 32],
            activation: Activation::Tanh,
            shared_trunk: false,
            ortho_init: true,
            encoder: None,
            ..Default::default()
        },
        ..Default::default()
    };
    let p = &mut c.ppo;
    p.n_envs = 8;
    p.n_steps = 64;
    p.batch_size = 128;
    p.n_epochs = 4;
    p.gamma = 0.99;
    p.gae_lambda = 0.95;
    p.learning_rate = Schedule::Constant(3e-4);
    p.clip_range = Schedule::Constant(0.2);
    p.ent_coef = 0.01;
    c
}

/// Returns of `episodes` deterministic episodes of `model` on `env`.
pub fn episode_returns<E: VecEnv>(
    model: &ActorCritic<B>,
    env: &mut E,
    episodes: usize,
    seed: u64,
) -> Vec<f64> {
    use burn::module::AutodiffModule;
    evaluate(
        &model.valid(),
        env,
        episodes,
        seed,
        true,
        &Default::default(),
    )
    .unwrap()
    .returns
}

/// Mean of a sample.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (0 for fewer than two values).
pub fn std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Empirical CVaR: the mean of the worst `ceil(alpha n)` values.
pub fn cvar(x: &[f64], alpha: f64) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let k = ((alpha * v.len() as f64).ceil() as usize).max(1);
    mean(&v[..k])
}

/// Sharpe ratio of per-episode returns (mean over standard deviation, not annualized).
pub fn sharpe(x: &[f64]) -> f64 {
    mean(x) / std(x).max(1e-12)
}

/// `mean ± std` over seeds.
pub fn pm(x: &[f64], digits: usize) -> String {
    format!("{:.*} ± {:.*}", digits, mean(x), digits, std(x))
}

/// A standard normal draw.
pub fn normal(rng: &mut Rng) -> f64 {
    rng.normal()
}

/// `docs/EXPERIMENTS.md` at the workspace root.
fn experiments_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/EXPERIMENTS.md")
}

/// Replace (or append) the section `name` of `docs/EXPERIMENTS.md` with `body`, written
/// atomically; the section is delimited by HTML comments so reruns replace only it.
pub fn write_section(name: &str, body: &str) {
    let path = experiments_md();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Experiments\n\nEach section is written by the command it names; rerunning a command \
         replaces its section only. Numbers are from CPU runs (ndarray backend) on the machine \
         and commit named in the section.\n"
            .to_string()
    });
    let begin = format!("<!-- BEGIN {name} -->");
    let end = format!("<!-- END {name} -->");
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    let new = match (text.find(&begin), text.find(&end)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &text[..a], block, &text[b + end.len()..])
        }
        _ => format!("{}\n{}\n", text.trim_end(), block),
    };
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, new).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    println!("wrote section `{name}` of {}", path.display());
}

/// Which build ran the experiment: `release`, or the dev profile, whose dependencies (Burn,
/// ndarray) are optimized at opt-level 3 in this workspace and our crates at opt-level 1.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev-profile (dependencies at opt-level 3, quantrl crates at opt-level 1)"
    } else {
        "release"
    }
}

/// The commit the experiment ran on (for the record), if git is available.
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
