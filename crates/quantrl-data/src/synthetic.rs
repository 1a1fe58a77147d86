//! Seeded synthetic markets: where the truth is known, a learner can be checked against it.
//!
//! Each generator is a serializable config with `validate()` and `generate(seed)`. The same
//! config and seed give the same path on every platform (the stream is quantrl's own
//! [`Rng`]). Every path is a [`MarketPath`]: `n_steps + 1` prices starting at `initial_price`
//! and the `n_steps` log returns between them, so prices are always positive.
//!
//! | generator | what it is for |
//! |-----------|----------------|
//! | [`GbmConfig`] | geometric Brownian motion: i.i.d. returns, nothing to predict beyond the drift |
//! | [`RegimeSwitchingConfig`] | Markov regime-switching GBM, with the regime labels |
//! | [`JumpDiffusionConfig`] | Merton jump diffusion; [`JumpDiffusionConfig::rare_crash`] for rare large crashes |
//! | [`GarchConfig`] | GARCH(1,1) returns: volatility clustering |
//! | [`PlantedSignalConfig`] | a noisy AR(1) signal that predicts returns, with the Sharpe ratio of the optimal position in closed form |
//!
//! Continuous-time parameters are per year (`mu_per_year`, `sigma_per_year`) with
//! `steps_per_year` steps of length `dt = 1 / steps_per_year`; the discrete-time models
//! (GARCH, planted signal) take per-step parameters.

use std::f64::consts::PI;

use quantrl_core::{
    ConfigError, Rng, check_closed, check_non_negative, check_open, check_positive,
};
use serde::{Deserialize, Serialize};

use crate::DataError;

/// A simulated price path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketPath {
    /// `n_steps + 1` prices, `prices[0]` the initial price; all positive.
    pub prices: Vec<f64>,
    /// `n_steps` log returns: `log_returns[t] = ln(prices[t + 1] / prices[t])`.
    pub log_returns: Vec<f64>,
}

impl MarketPath {
    /// Prices `initial_price * exp(cumulative log return)`.
    pub fn from_log_returns(initial_price: f64, log_returns: Vec<f64>) -> Self {
        let mut prices = Vec::with_capacity(log_returns.len() + 1);
        let mut log_price = initial_price.ln();
        prices.push(initial_price);
        for r in &log_returns {
            log_price += r;
            prices.push(log_price.exp());
        }
        Self {
            prices,
            log_returns,
        }
    }
}

/// Check the fields every continuous-time generator shares.
fn validate_path(
    name: &str,
    initial_price: f64,
    steps_per_year: f64,
    n_steps: usize,
) -> Result<(), ConfigError> {
    check_positive(&format!("{name}.initial_price"), initial_price)?;
    check_positive(&format!("{name}.steps_per_year"), steps_per_year)?;
    if n_steps == 0 {
        return Err(ConfigError::out_of_range(
            format!("{name}.n_steps"),
            0,
            ">= 1",
        ));
    }
    Ok(())
}

fn check_finite_value(field: &str, value: f64) -> Result<(), ConfigError> {
    check_closed(field, value, f64::MIN, f64::MAX)
}

/// Log return of one GBM step of length `dt` (the exact discretization of
/// `dS = mu S dt + sigma S dW`).
fn gbm_step(rng: &mut Rng, mu: f64, sigma: f64, dt: f64) -> f64 {
    (mu - 0.5 * sigma * sigma) * dt + sigma * dt.sqrt() * rng.normal()
}

/// Geometric Brownian motion `dS = mu S dt + sigma S dW`, simulated exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbmConfig {
    /// Price at step 0.
    pub initial_price: f64,
    /// Expected arithmetic return per year (`E[S_{t+dt} / S_t] = exp(mu dt)`).
    pub mu_per_year: f64,
    /// Volatility per year.
    pub sigma_per_year: f64,
    /// Steps per year (252 for daily bars).
    pub steps_per_year: f64,
    /// Number of returns to simulate.
    pub n_steps: usize,
}

impl Default for GbmConfig {
    fn default() -> Self {
        Self {
            initial_price: 100.0,
            mu_per_year: 0.05,
            sigma_per_year: 0.2,
            steps_per_year: 252.0,
            n_steps: 1000,
        }
    }
}

impl GbmConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_path("gbm", self.initial_price, self.steps_per_year, self.n_steps)?;
        check_finite_value("gbm.mu_per_year", self.mu_per_year)?;
        check_non_negative("gbm.sigma_per_year", self.sigma_per_year)
    }

    /// Simulate a path.
    pub fn generate(&self, seed: u64) -> Result<MarketPath, DataError> {
        self.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let dt = 1.0 / self.steps_per_year;
        let returns = (0..self.n_steps)
            .map(|_| gbm_step(&mut rng, self.mu_per_year, self.sigma_per_year, dt))
            .collect();
        Ok(MarketPath::from_log_returns(self.initial_price, returns))
    }
}

/// Drift and volatility of one regime of a [`RegimeSwitchingConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regime {
    /// Expected arithmetic return per year in this regime.
    pub mu_per_year: f64,
    /// Volatility per year in this regime.
    pub sigma_per_year: f64,
}

/// Markov regime-switching GBM: `K` regimes, each a GBM with its own drift and volatility;
/// the regime follows a Markov chain with a per-step transition matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegimeSwitchingConfig {
    /// Price at step 0.
    pub initial_price: f64,
    /// Steps per year.
    pub steps_per_year: f64,
    /// Number of returns to simulate.
    pub n_steps: usize,
    /// The regimes (at least one).
    pub regimes: Vec<Regime>,
    /// `transition[i][j]`: probability of moving from regime `i` to regime `j` in one step;
    /// `K x K`, rows sum to 1.
    pub transition: Vec<Vec<f64>>,
    /// Regime of the first step.
    pub initial_regime: usize,
}

impl Default for RegimeSwitchingConfig {
    /// A calm bull regime (mean stay 100 steps) and a turbulent bear regime (mean stay 33).
    fn default() -> Self {
        Self {
            initial_price: 100.0,
            steps_per_year: 252.0,
            n_steps: 1000,
            regimes: vec![
                Regime {
                    mu_per_year: 0.10,
                    sigma_per_year: 0.10,
                },
                Regime {
                    mu_per_year: -0.20,
                    sigma_per_year: 0.35,
                },
            ],
            transition: vec![vec![0.99, 0.01], vec![0.03, 0.97]],
            initial_regime: 0,
        }
    }
}

/// A regime-switching path and the regime of each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimePath {
    /// Prices and log returns.
    pub path: MarketPath,
    /// `regimes[t]`: the regime that generated `log_returns[t]`.
    pub regimes: Vec<usize>,
}

impl RegimeSwitchingConfig {
    /// Check every field, the shape of the transition matrix and that its rows sum to 1
    /// (within `1e-9`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "regime_switching";
        validate_path(name, self.initial_price, self.steps_per_year, self.n_steps)?;
        let k = self.regimes.len();
        if k == 0 {
            return Err(ConfigError::out_of_range(
                "regime_switching.regimes",
                "[]",
                "at least one regime",
            ));
        }
        for (i, r) in self.regimes.iter().enumerate() {
            check_finite_value(&format!("{name}.regimes[{i}].mu_per_year"), r.mu_per_year)?;
            check_non_negative(
                &format!("{name}.regimes[{i}].sigma_per_year"),
                r.sigma_per_year,
            )?;
        }
        if self.transition.len() != k || self.transition.iter().any(|row| row.len() != k) {
            return Err(ConfigError::Inconsistent(format!(
                "regime_switching.transition must be {k} x {k} (one row and column per regime)"
            )));
        }
        for (i, row) in self.transition.iter().enumerate() {
            for (j, &p) in row.iter().enumerate() {
                check_closed(&format!("{name}.transition[{i}][{j}]"), p, 0.0, 1.0)?;
            }
            let sum: f64 = row.iter().sum();
            if (sum - 1.0).abs() > 1e-9 {
                return Err(ConfigError::out_of_range(
                    format!("sum of {name}.transition[{i}]"),
                    sum,
                    "1 (each row is a probability distribution)",
                ));
            }
        }
        if self.initial_regime >= k {
            return Err(ConfigError::out_of_range(
                "regime_switching.initial_regime",
                self.initial_regime,
                format!("in [0, {k})"),
            ));
        }
        Ok(())
    }

    /// Simulate a path and its regimes.
    pub fn generate(&self, seed: u64) -> Result<RegimePath, DataError> {
        self.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let dt = 1.0 / self.steps_per_year;
        let mut regime = self.initial_regime;
        let mut regimes = Vec::with_capacity(self.n_steps);
        let mut returns = Vec::with_capacity(self.n_steps);
        for _ in 0..self.n_steps {
            let Regime {
                mu_per_year,
                sigma_per_year,
            } = self.regimes[regime];
            returns.push(gbm_step(&mut rng, mu_per_year, sigma_per_year, dt));
            regimes.push(regime);
            regime = draw_index(&mut rng, &self.transition[regime]);
        }
        Ok(RegimePath {
            path: MarketPath::from_log_returns(self.initial_price, returns),
            regimes,
        })
    }
}

/// Index drawn from probabilities summing to 1 (the last positive one when rounding leaves
/// the draw past the total).
fn draw_index(rng: &mut Rng, probabilities: &[f64]) -> usize {
    let mut u = rng.uniform();
    let mut last_positive = 0;
    for (i, &p) in probabilities.iter().enumerate() {
        if p > 0.0 {
            if u < p {
                return i;
            }
            u -= p;
            last_positive = i;
        }
    }
    last_positive
}

/// Merton jump diffusion: GBM plus Poisson jumps with normally distributed log sizes.
///
/// Per step of length `dt` the log return is
/// `(mu - sigma^2/2 - lambda k) dt + sigma sqrt(dt) Z + sum_{i<=N} Y_i` with
/// `N ~ Poisson(lambda dt)`, `Y_i ~ N(jump_mean, jump_std^2)` and
/// `k = exp(jump_mean + jump_std^2 / 2) - 1`. The `lambda k` term compensates the jumps, so
/// `mu_per_year` stays the expected arithmetic return: with negative jumps the price drifts up
/// faster between jumps than `mu` alone says, as a market that pays a crash premium does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JumpDiffusionConfig {
    /// Price at step 0.
    pub initial_price: f64,
    /// Expected arithmetic return per year, jumps included.
    pub mu_per_year: f64,
    /// Diffusion volatility per year.
    pub sigma_per_year: f64,
    /// Steps per year.
    pub steps_per_year: f64,
    /// Number of returns to simulate.
    pub n_steps: usize,
    /// Expected number of jumps per year (`lambda`).
    pub jumps_per_year: f64,
    /// Mean of the log jump size.
    pub jump_mean: f64,
    /// Standard deviation of the log jump size.
    pub jump_std: f64,
}

impl Default for JumpDiffusionConfig {
    /// Symmetric-ish Merton jumps: about 5 per year, mean log size -1%, std 4%.
    fn default() -> Self {
        Self {
            initial_price: 100.0,
            mu_per_year: 0.05,
            sigma_per_year: 0.15,
            steps_per_year: 252.0,
            n_steps: 1000,
            jumps_per_year: 5.0,
            jump_mean: -0.01,
            jump_std: 0.04,
        }
    }
}

/// A jump-diffusion path and the number of jumps in each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JumpPath {
    /// Prices and log returns.
    pub path: MarketPath,
    /// `jump_counts[t]`: jumps inside `log_returns[t]` (crash labels for a crash market).
    pub jump_counts: Vec<u32>,
}

impl JumpDiffusionConfig {
    /// Upper bound on `jumps_per_year / steps_per_year`: the Poisson draw costs one uniform
    /// per jump, and more jumps per step than this is no longer a jump process.
    pub const MAX_JUMPS_PER_STEP: f64 = 30.0;

    /// A market with rare crashes: a calm uptrend (8% a year, 12% volatility) broken on
    /// average once every four years (daily steps) by a crash of about -25% (log size
    /// `N(-0.3, 0.05^2)`). Strategies that sell crash insurance look good until the crash.
    pub fn rare_crash() -> Self {
        Self {
            initial_price: 100.0,
            mu_per_year: 0.08,
            sigma_per_year: 0.12,
            steps_per_year: 252.0,
            n_steps: 2520,
            jumps_per_year: 0.25,
            jump_mean: -0.3,
            jump_std: 0.05,
        }
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "jump_diffusion";
        validate_path(name, self.initial_price, self.steps_per_year, self.n_steps)?;
        check_finite_value("jump_diffusion.mu_per_year", self.mu_per_year)?;
        check_non_negative("jump_diffusion.sigma_per_year", self.sigma_per_year)?;
        check_closed(
            "jump_diffusion.jumps_per_year",
            self.jumps_per_year,
            0.0,
            Self::MAX_JUMPS_PER_STEP * self.steps_per_year,
        )?;
        check_closed("jump_diffusion.jump_mean", self.jump_mean, -10.0, 10.0)?;
        check_closed("jump_diffusion.jump_std", self.jump_std, 0.0, 10.0)
    }

    /// Simulate a path and its jump counts.
    pub fn generate(&self, seed: u64) -> Result<JumpPath, DataError> {
        self.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let dt = 1.0 / self.steps_per_year;
        let k = (self.jump_mean + 0.5 * self.jump_std * self.jump_std).exp() - 1.0;
        let mu = self.mu_per_year - self.jumps_per_year * k;
        let (mut returns, mut jump_counts) = (Vec::new(), Vec::new());
        for _ in 0..self.n_steps {
            let mut r = gbm_step(&mut rng, mu, self.sigma_per_year, dt);
            let n = poisson(&mut rng, self.jumps_per_year * dt);
            for _ in 0..n {
                r += self.jump_mean + self.jump_std * rng.normal();
            }
            returns.push(r);
            jump_counts.push(n);
        }
        Ok(JumpPath {
            path: MarketPath::from_log_returns(self.initial_price, returns),
            jump_counts,
        })
    }
}

/// Poisson draw by Knuth's product of uniforms (cost grows with `lambda`, which is small).
fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    let limit = (-lambda).exp();
    let mut product = rng.uniform();
    let mut k = 0;
    while product > limit {
        product *= rng.uniform();
        k += 1;
    }
    k
}

/// GARCH(1,1) log returns: `r_t = mu + sqrt(h_t) z_t`,
/// `h_{t+1} = omega + alpha (r_t - mu)^2 + beta h_t`, started at the unconditional variance
/// `omega / (1 - alpha - beta)`. Parameters are per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GarchConfig {
    /// Price at step 0.
    pub initial_price: f64,
    /// Number of returns to simulate.
    pub n_steps: usize,
    /// Mean log return per step.
    pub mu: f64,
    /// Constant of the variance recursion (> 0).
    pub omega: f64,
    /// Weight of the last squared shock (ARCH term, >= 0).
    pub alpha: f64,
    /// Weight of the last variance (GARCH term, >= 0); `alpha + beta < 1`.
    pub beta: f64,
}

impl Default for GarchConfig {
    /// Daily-like returns: 1% unconditional volatility, persistence `alpha + beta = 0.98`.
    fn default() -> Self {
        Self {
            initial_price: 100.0,
            n_steps: 1000,
            mu: 0.0003,
            omega: 2e-6,
            alpha: 0.08,
            beta: 0.9,
        }
    }
}

/// A GARCH path and its conditional variances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GarchPath {
    /// Prices and log returns.
    pub path: MarketPath,
    /// `variance[t]`: the conditional variance `h_t` of `log_returns[t]`.
    pub variance: Vec<f64>,
}

impl GarchConfig {
    /// Check every field and stationarity (`alpha + beta < 1`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_path("garch", self.initial_price, 1.0, self.n_steps)?;
        check_closed("garch.mu", self.mu, -1.0, 1.0)?;
        check_positive("garch.omega", self.omega)?;
        check_non_negative("garch.alpha", self.alpha)?;
        check_non_negative("garch.beta", self.beta)?;
        if self.alpha + self.beta >= 1.0 {
            return Err(ConfigError::Inconsistent(format!(
                "garch.alpha + garch.beta = {} must be < 1 (covariance stationarity)",
                self.alpha + self.beta
            )));
        }
        Ok(())
    }

    /// The unconditional variance `omega / (1 - alpha - beta)`.
    pub fn unconditional_variance(&self) -> f64 {
        self.omega / (1.0 - self.alpha - self.beta)
    }

    /// Simulate a path and its conditional variances.
    pub fn generate(&self, seed: u64) -> Result<GarchPath, DataError> {
        self.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let mut h = self.unconditional_variance();
        let (mut returns, mut variance) = (Vec::new(), Vec::new());
        for _ in 0..self.n_steps {
            let shock = h.sqrt() * rng.normal();
            returns.push(self.mu + shock);
            variance.push(h);
            h = self.omega + self.alpha * shock * shock + self.beta * h;
        }
        Ok(GarchPath {
            path: MarketPath::from_log_returns(self.initial_price, returns),
            variance,
        })
    }
}

/// A market with a planted, partly observable signal whose best use is known in closed form.
///
/// The model (per step, all shocks independent standard normals):
///
/// ```text
/// s_0     ~ N(0, sigma_s^2)                                  stationary start
/// s_{t+1} = phi s_t + sigma_s sqrt(1 - phi^2) eta_t          AR(1) (a sampled OU process)
/// o_t     = s_t + sigma_o xi_t                               what a policy observes
/// r_{t+1} = beta s_t + sigma_e eps_t                         log_returns[t]
/// ```
///
/// A position `w_t` chosen after seeing `o_0..=o_t` earns `w_t r_{t+1}`.
///
/// # The optimal position and its Sharpe ratio
///
/// Given the observations, `s_t ~ N(m_t, P_t)` where `m_t` is the Kalman filter mean
/// ([`PlantedSignalConfig::filter`]) and `P_t` converges to the steady-state `P`
/// ([`PlantedSignalConfig::posterior_variance`]). Then `E[r_{t+1} | F_t] = beta m_t` and
/// `Var(r_{t+1} | F_t) = beta^2 P + sigma_e^2` is constant, so the mean-variance (and one-step
/// CARA) optimal position is
/// `w*_t = beta m_t / (beta^2 P + sigma_e^2)` ([`SignalPolicy::FilteredLinear`]).
///
/// For any position `w = x` or `w = sign(x)` where `x` is a linear function of the
/// observations, jointly Gaussian with `s_t`, with squared correlation `rho^2` and `beta x`
/// positively correlated with `s_t beta`, Isserlis' theorem gives the per-step Sharpe ratio
/// `E[w r] / sd(w r)`, with `k = |beta| sigma_s / sigma_e`:
///
/// ```text
/// linear:  SR = rho k / sqrt(k^2 (1 + rho^2) + 1)
/// sign:    SR = rho k sqrt(2/pi) / sqrt(k^2 (1 - 2 rho^2 / pi) + 1)
/// ```
///
/// Both increase with `rho`, and the filter mean has the largest correlation with `s_t` of
/// all linear functions of the observations: `rho^2 = 1 - P / sigma_s^2`. So `w*` has the
/// highest Sharpe ratio of all positions linear in the observation history, and the sign of
/// `m_t` the highest of all long/short unit positions. Using only the last observation
/// gives `rho^2 = sigma_s^2 / (sigma_s^2 + sigma_o^2)`. (The policy that maximizes the
/// *unconditional* Sharpe ratio over all non-linear rules is `mu_t / (mu_t^2 + sigma^2)`,
/// Ferson and Siegel 2001; it differs from `w*` at second order in the signal strength.)
/// [`PlantedSignalConfig::closed_form_sharpe`] evaluates these formulas; a test checks them
/// against a long simulated path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlantedSignalConfig {
    /// Price at step 0.
    pub initial_price: f64,
    /// Number of returns to simulate.
    pub n_steps: usize,
    /// AR(1) coefficient of the signal, in (-1, 1) (`exp(-theta dt)` of an OU process).
    pub phi: f64,
    /// Stationary standard deviation of the signal `sigma_s` (> 0).
    pub signal_std: f64,
    /// Standard deviation of the observation noise `sigma_o` (>= 0; 0 = fully observed).
    pub observation_noise_std: f64,
    /// Loading of the next return on the signal `beta`.
    pub beta: f64,
    /// Standard deviation of the unpredictable part of the return `sigma_e` (> 0).
    pub return_noise_std: f64,
}

impl Default for PlantedSignalConfig {
    /// Daily-like returns of about 1% with a weak, persistent signal (`k = 0.2`).
    fn default() -> Self {
        Self {
            initial_price: 100.0,
            n_steps: 1000,
            phi: 0.9,
            signal_std: 1.0,
            observation_noise_std: 1.0,
            beta: 0.002,
            return_noise_std: 0.01,
        }
    }
}

/// A planted-signal path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedSignalPath {
    /// Prices and log returns; `log_returns[t] = r_{t+1} = beta signal[t] + noise`.
    pub path: MarketPath,
    /// The hidden signal `s_t`.
    pub signal: Vec<f64>,
    /// What a policy sees at step `t`: `o_t = s_t + noise`.
    pub observed: Vec<f64>,
}

/// Position rules on a planted-signal market, each with a closed-form Sharpe ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalPolicy {
    /// The optimal `w*_t = beta m_t / (beta^2 P + sigma_e^2)` on the Kalman filter mean.
    FilteredLinear,
    /// `sign(beta m_t)`: unit long/short on the filter mean.
    FilteredSign,
    /// `beta o_t`: proportional to the last observation only.
    ObservedLinear,
    /// `sign(beta o_t)`: unit long/short on the last observation.
    ObservedSign,
}

impl PlantedSignalConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_path("planted_signal", self.initial_price, 1.0, self.n_steps)?;
        check_open("planted_signal.phi", self.phi, -1.0, 1.0)?;
        check_positive("planted_signal.signal_std", self.signal_std)?;
        check_non_negative(
            "planted_signal.observation_noise_std",
            self.observation_noise_std,
        )?;
        check_closed("planted_signal.beta", self.beta, -1.0, 1.0)?;
        check_positive("planted_signal.return_noise_std", self.return_noise_std)
    }

    fn innovation_variance(&self) -> f64 {
        (1.0 - self.phi * self.phi) * self.signal_std * self.signal_std
    }

    /// Simulate a path, its hidden signal and the observations.
    pub fn generate(&self, seed: u64) -> Result<PlantedSignalPath, DataError> {
        self.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let innovation_std = self.innovation_variance().sqrt();
        let mut s = self.signal_std * rng.normal();
        let n = self.n_steps;
        let (mut signal, mut observed, mut returns) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..n {
            signal.push(s);
            observed.push(s + self.observation_noise_std * rng.normal());
            returns.push(self.beta * s + self.return_noise_std * rng.normal());
            s = self.phi * s + innovation_std * rng.normal();
        }
        Ok(PlantedSignalPath {
            path: MarketPath::from_log_returns(self.initial_price, returns),
            signal,
            observed,
        })
    }

    /// Kalman filter means `m_t = E[s_t | o_0..=o_t]`, started from the stationary prior.
    /// Causal: `m_t` uses observations up to `t` only. Assumes a config that passes
    /// [`PlantedSignalConfig::validate`].
    pub fn filter(&self, observed: &[f64]) -> Vec<f64> {
        let r = self.observation_noise_std * self.observation_noise_std;
        let q = self.innovation_variance();
        let (mut prior_mean, mut prior_var) = (0.0, self.signal_std * self.signal_std);
        observed
            .iter()
            .map(|&o| {
                let gain = prior_var / (prior_var + r);
                let mean = prior_mean + gain * (o - prior_mean);
                let var = (1.0 - gain) * prior_var;
                prior_mean = self.phi * mean;
                prior_var = self.phi * self.phi * var + q;
                mean
            })
            .collect()
    }

    /// Steady-state posterior variance `P = lim Var(s_t | o_0..=o_t)` (the fixed point of the
    /// Kalman variance recursion; 0 when the signal is observed without noise).
    pub fn posterior_variance(&self) -> f64 {
        let r = self.observation_noise_std * self.observation_noise_std;
        let q = self.innovation_variance();
        // Prior variance p solves p = phi^2 p r / (p + r) + q, a quadratic with one positive root.
        let b = r * (1.0 - self.phi * self.phi) - q;
        let prior = 0.5 * (-b + (b * b + 4.0 * q * r).sqrt());
        prior * r / (prior + r)
    }

    /// Positions a policy takes at each step, given the observations.
    pub fn positions(&self, observed: &[f64], policy: SignalPolicy) -> Vec<f64> {
        let sign = |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        match policy {
            SignalPolicy::FilteredLinear => {
                let scale = self.beta
                    / (self.beta * self.beta * self.posterior_variance()
                        + self.return_noise_std * self.return_noise_std);
                self.filter(observed)
                    .into_iter()
                    .map(|m| scale * m)
                    .collect()
            }
            SignalPolicy::FilteredSign => self
                .filter(observed)
                .into_iter()
                .map(|m| sign(self.beta * m))
                .collect(),
            SignalPolicy::ObservedLinear => observed.iter().map(|o| self.beta * o).collect(),
            SignalPolicy::ObservedSign => observed.iter().map(|o| sign(self.beta * o)).collect(),
        }
    }

    /// Squared correlation `rho^2` of the policy's signal estimate with `s_t` (stationary).
    pub fn signal_r2(&self, policy: SignalPolicy) -> f64 {
        let vs = self.signal_std * self.signal_std;
        match policy {
            SignalPolicy::FilteredLinear | SignalPolicy::FilteredSign => {
                1.0 - self.posterior_variance() / vs
            }
            SignalPolicy::ObservedLinear | SignalPolicy::ObservedSign => {
                vs / (vs + self.observation_noise_std * self.observation_noise_std)
            }
        }
    }

    /// Per-step Sharpe ratio (mean over standard deviation of `w_t r_{t+1}`, not annualized)
    /// of a policy in the stationary regime, in closed form (see the type's docs).
    pub fn closed_form_sharpe(&self, policy: SignalPolicy) -> f64 {
        let rho2 = self.signal_r2(policy);
        let rho = rho2.sqrt();
        let k = self.beta.abs() * self.signal_std / self.return_noise_std;
        match policy {
            SignalPolicy::FilteredLinear | SignalPolicy::ObservedLinear => {
                rho * k / (k * k * (1.0 + rho2) + 1.0).sqrt()
            }
            SignalPolicy::FilteredSign | SignalPolicy::ObservedSign => {
                let c = 2.0 / PI;
                rho * k * c.sqrt() / (k * k * (1.0 - c * rho2) + 1.0).sqrt()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sharpe ratio of the whole series and its batch-means standard error (the P&L is
    /// autocorrelated through the signal, so i.i.d. formulas would understate the error).
    fn sharpe_with_error(pnl: &[f64], batches: usize) -> (f64, f64) {
        let sharpe = |x: &[f64]| {
            let m = x.iter().sum::<f64>() / x.len() as f64;
            let v = x.iter().map(|p| (p - m) * (p - m)).sum::<f64>() / (x.len() - 1) as f64;
            m / v.sqrt()
        };
        let size = pnl.len() / batches;
        let per_batch: Vec<f64> = pnl.chunks_exact(size).map(sharpe).collect();
        let mean = per_batch.iter().sum::<f64>() / batches as f64;
        let var = per_batch
            .iter()
            .map(|s| (s - mean) * (s - mean))
            .sum::<f64>()
            / (batches - 1) as f64;
        (sharpe(pnl), (var / batches as f64).sqrt())
    }

    #[test]
    fn planted_signal_sharpe_matches_closed_form() {
        let config = PlantedSignalConfig {
            n_steps: 200_000,
            phi: 0.8,
            observation_noise_std: 0.7,
            beta: 0.004,
            ..Default::default()
        };
        let path = config.generate(11).unwrap();
        let burn_in = 100; // the filter variance converges geometrically from the prior
        let policies = [
            SignalPolicy::FilteredLinear,
            SignalPolicy::FilteredSign,
            SignalPolicy::ObservedLinear,
            SignalPolicy::ObservedSign,
        ];
        for policy in policies {
            let w = config.positions(&path.observed, policy);
            let pnl: Vec<f64> = w
                .iter()
                .zip(&path.path.log_returns)
                .skip(burn_in)
                .map(|(w, r)| w * r)
                .collect();
            let (empirical, se) = sharpe_with_error(&pnl, 50);
            let expected = config.closed_form_sharpe(policy);
            assert!(
                se < 0.01,
                "{policy:?}: standard error {se} too large to test anything"
            );
            assert!(
                (empirical - expected).abs() < 4.0 * se,
                "{policy:?}: empirical Sharpe {empirical} vs closed form {expected} (se {se})"
            );
        }
        let best = config.closed_form_sharpe(SignalPolicy::FilteredLinear);
        for policy in &policies[1..] {
            assert!(config.closed_form_sharpe(*policy) < best, "{policy:?}");
        }
    }

    #[test]
    fn filter_variance_converges_to_closed_form() {
        let config = PlantedSignalConfig {
            phi: 0.5,
            observation_noise_std: 2.0,
            ..Default::default()
        };
        // The filter mean is linear in the observations, so feeding a unit impulse late
        // exposes the steady-state gain K = P / R.
        let mut obs = vec![0.0; 200];
        obs[199] = 1.0;
        let gain = config.filter(&obs)[199];
        let r = 4.0;
        assert!((gain - config.posterior_variance() / r).abs() < 1e-12);
        let exact = PlantedSignalConfig {
            observation_noise_std: 0.0,
            ..config
        };
        assert_eq!(exact.posterior_variance(), 0.0);
        assert!((exact.signal_r2(SignalPolicy::FilteredLinear) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn garch_variance_follows_recursion() {
        let c = GarchConfig {
            n_steps: 50,
            ..Default::default()
        };
        let g = c.generate(3).unwrap();
        assert!((g.variance[0] - c.unconditional_variance()).abs() < 1e-18);
        for t in 1..50 {
            let shock = g.path.log_returns[t - 1] - c.mu;
            let h = c.omega + c.alpha * shock * shock + c.beta * g.variance[t - 1];
            assert!((g.variance[t] - h).abs() < 1e-15);
        }
    }

    #[test]
    fn gbm_log_return_moments() {
        let c = GbmConfig {
            n_steps: 100_000,
            mu_per_year: 0.1,
            sigma_per_year: 0.3,
            ..Default::default()
        };
        let r = c.generate(5).unwrap().log_returns;
        let dt: f64 = 1.0 / 252.0;
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / r.len() as f64;
        let sd = 0.3 * dt.sqrt();
        assert!((mean - (0.1 - 0.045) * dt).abs() < 4.0 * sd / (r.len() as f64).sqrt());
        assert!((var.sqrt() / sd - 1.0).abs() < 0.01);
    }

    #[test]
    fn regime_switching_stays_in_regimes_with_expected_frequency() {
        let c = RegimeSwitchingConfig {
            n_steps: 50_000,
            ..Default::default()
        };
        let p = c.generate(8).unwrap();
        assert_eq!(p.regimes.len(), 50_000);
        // Stationary share of regime 1: 0.01 / (0.01 + 0.03) = 0.25.
        let share = p.regimes.iter().filter(|&&r| r == 1).count() as f64 / 50_000.0;
        assert!((share - 0.25).abs() < 0.05, "{share}");
        let bad = RegimeSwitchingConfig {
            transition: vec![vec![0.5, 0.4], vec![0.0, 1.0]],
            ..c
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn rare_crashes_are_rare_and_large() {
        let c = JumpDiffusionConfig {
            n_steps: 252 * 200,
            ..JumpDiffusionConfig::rare_crash()
        };
        let p = c.generate(1).unwrap();
        let crashes: u32 = p.jump_counts.iter().sum();
        // 0.25 per year for 200 years: 50 expected, sd ~7.
        assert!((25..=75).contains(&crashes), "{crashes}");
        let worst = p
            .path
            .log_returns
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        assert!(worst < -0.2, "{worst}");
    }

    #[test]
    fn configs_round_trip_through_json() {
        let c = JumpDiffusionConfig::rare_crash();
        let back: JumpDiffusionConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let partial: GbmConfig = serde_json::from_str(r#"{"n_steps": 10}"#).unwrap();
        assert_eq!(partial.n_steps, 10);
        assert!(serde_json::from_str::<GbmConfig>(r#"{"n_step": 10}"#).is_err());
    }
}
