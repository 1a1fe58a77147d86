//! Optimizer choice: Burn's AdamW, UPGD or AdaUPGD (Elsayed & Mahmood 2024) for any Burn
//! module, with parameter groups and learning-rate multipliers.
//!
//! [`OptimizerConfig`] is what a config file sets (`[optimizer]`, with `kind = "adamw"`,
//! `"upgd"` or `"adaupgd"`; a table without `kind` is AdamW, the format configs and
//! checkpoints had before the choice existed). [`OptimizerConfig::init`] builds an
//! [`AnyOptimizer`], which implements Burn's [`Optimizer`] for any module, so PPO, recurrent
//! PPO or anything else trains with whichever was chosen through one type.
//!
//! Parameter groups: AdamW is wrapped in [`GroupedOptimizer`] (one step per group); UPGD takes
//! its groups itself ([`Upgd::with_groups`]) so that its global maximum utility stays a
//! maximum over every parameter. UPGD's perturbation noise comes from a seeded host generator
//! ([`RngNoise`]), so a run is reproducible and a checkpoint can save the generator.

use burn::module::AutodiffModule;
use burn::optim::{
    AdamW, GradientsParams, LearningRate, MultiGradientsParams, Optimizer,
    adaptor::OptimizerAdaptor,
};
use burn::tensor::backend::AutodiffBackend;
use quantrl_core::{ConfigError, Rng};
use quantrl_optim::{
    AdamMoments, AdamWSettings, GroupedOptimizer, ParamGroup, Perturbation, RngNoise, Upgd,
    UpgdSettings, UtilityOrder, UtilityScope, UtilityStats,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// Which optimizer trains the network, with its hyperparameters (the learning rate and its
/// schedule stay in the algorithm's config).
///
/// In TOML, `[optimizer]` with `kind = "adamw"` (the default when `kind` is absent),
/// `kind = "upgd"` or `kind = "adaupgd"` and that optimizer's fields:
///
/// ```toml
/// [optimizer]
/// kind = "adaupgd"
/// sigma = 0.001
/// beta_utility = 0.999
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum OptimizerConfig {
    /// Burn's AdamW (SB3's Adam defaults).
    #[serde(rename = "adamw")]
    AdamW(AdamWSettings),
    /// UPGD: utility-gated SGD with perturbation noise.
    #[serde(rename = "upgd")]
    Upgd(UpgdConfig),
    /// AdaUPGD: UPGD on Adam-normalized steps (the paper's choice for PPO).
    #[serde(rename = "adaupgd")]
    AdaUpgd(AdaUpgdConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self::AdamW(AdamWSettings::default())
    }
}

impl<'de> Deserialize<'de> for OptimizerConfig {
    /// A table with a `kind` key, or without one for AdamW (the format before optimizers
    /// could be chosen); unknown keys are errors naming the key.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let map = value
            .as_object_mut()
            .ok_or_else(|| D::Error::custom("optimizer must be a table"))?;
        let kind = match map.remove("kind") {
            None => "adamw".to_string(),
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "optimizer.kind must be a string, got {other}"
                )));
            }
        };
        let parsed = match kind.as_str() {
            "adamw" => serde_json::from_value(value).map(Self::AdamW),
            "upgd" => serde_json::from_value(value).map(Self::Upgd),
            "adaupgd" => serde_json::from_value(value).map(Self::AdaUpgd),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown optimizer.kind `{other}`, expected `adamw`, `upgd` or `adaupgd`"
                )));
            }
        };
        parsed.map_err(|e| D::Error::custom(format!("optimizer ({kind}): {e}")))
    }
}

/// UPGD's hyperparameters as a config file gives them. Defaults: the reference's
/// `FirstOrderGlobalUPGD` with the README's values (`λ = 1e-3`, `β_u = 0.999`, `σ = 1e-3`).
/// UPGD steps like SGD: it needs a larger learning rate than Adam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpgdConfig {
    /// Decoupled weight decay, `>= 0`.
    pub weight_decay: f64,
    /// Decay of the utility trace, in `[0, 1)`.
    pub beta_utility: f64,
    /// Perturbation noise scale, `>= 0`.
    pub sigma: f64,
    /// Global or local utility normalization.
    pub scope: UtilityScope,
    /// What the utility gates.
    pub perturbation: Perturbation,
    /// First-order or approximate second-order utility.
    pub utility_order: UtilityOrder,
    /// Multiplier of the step `c · lr · d`, `> 0`.
    pub step_size_factor: f64,
}

impl Default for UpgdConfig {
    fn default() -> Self {
        let s = UpgdSettings::first_order_global();
        Self {
            weight_decay: s.weight_decay,
            beta_utility: s.beta_utility,
            sigma: s.sigma,
            scope: s.scope,
            perturbation: s.perturbation,
            utility_order: s.utility_order,
            step_size_factor: s.step_size_factor,
        }
    }
}

impl UpgdConfig {
    /// The optimizer's settings (no Adam moments).
    pub fn settings(&self) -> UpgdSettings {
        UpgdSettings {
            weight_decay: self.weight_decay,
            beta_utility: self.beta_utility,
            sigma: self.sigma,
            scope: self.scope,
            perturbation: self.perturbation,
            utility_order: self.utility_order,
            adaptive: None,
            step_size_factor: self.step_size_factor,
        }
    }
}

/// AdaUPGD's hyperparameters as a config file gives them. Defaults: the reference's
/// `AdaptiveUPGD` (`core/run/rl/adaupgd.py`): global, protected, Adam moments
/// `(0.9, 0.999, 1e-5)`, step `2 lr`, `λ = 1e-3`, `β_u = 0.999`, `σ = 1e-3`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaUpgdConfig {
    /// Decoupled weight decay, `>= 0`.
    pub weight_decay: f64,
    /// Decay of the utility trace, in `[0, 1)`.
    pub beta_utility: f64,
    /// Perturbation noise scale, `>= 0`.
    pub sigma: f64,
    /// Global or local utility normalization.
    pub scope: UtilityScope,
    /// What the utility gates.
    pub perturbation: Perturbation,
    /// First-order or approximate second-order utility.
    pub utility_order: UtilityOrder,
    /// Multiplier of the step `c · lr · d`, `> 0`.
    pub step_size_factor: f64,
    /// Adam first-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Adam second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Adam denominator epsilon, `> 0`.
    pub eps: f64,
}

impl Default for AdaUpgdConfig {
    fn default() -> Self {
        let s = UpgdSettings::adaupgd();
        let m = s.adaptive.unwrap_or_default();
        Self {
            weight_decay: s.weight_decay,
            beta_utility: s.beta_utility,
            sigma: s.sigma,
            scope: s.scope,
            perturbation: s.perturbation,
            utility_order: s.utility_order,
            step_size_factor: s.step_size_factor,
            beta1: m.beta1,
            beta2: m.beta2,
            eps: m.eps,
        }
    }
}

impl AdaUpgdConfig {
    /// The optimizer's settings (with Adam moments).
    pub fn settings(&self) -> UpgdSettings {
        UpgdSettings {
            weight_decay: self.weight_decay,
            beta_utility: self.beta_utility,
            sigma: self.sigma,
            scope: self.scope,
            perturbation: self.perturbation,
            utility_order: self.utility_order,
            adaptive: Some(AdamMoments {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
            }),
            step_size_factor: self.step_size_factor,
        }
    }
}

impl OptimizerConfig {
    /// Check every hyperparameter; the error names the field (`optimizer.eps`,
    /// `upgd.sigma`, ...) and the allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::AdamW(s) => s.validate(),
            Self::Upgd(c) => c.settings().validate(),
            Self::AdaUpgd(c) => c.settings().validate(),
        }
    }

    /// A short name for logs and reports (`adamw`, `upgd`, `adaupgd`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::AdamW(_) => "adamw",
            Self::Upgd(_) => "upgd",
            Self::AdaUpgd(_) => "adaupgd",
        }
    }

    /// The UPGD settings, for the two UPGD kinds.
    pub fn upgd_settings(&self) -> Option<UpgdSettings> {
        match self {
            Self::AdamW(_) => None,
            Self::Upgd(c) => Some(c.settings()),
            Self::AdaUpgd(c) => Some(c.settings()),
        }
    }

    /// The optimizer for a module of type `M`, with parameter `groups` (learning-rate
    /// multipliers) and, for UPGD, perturbation noise drawn from `noise` (validate first).
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        groups: Vec<ParamGroup>,
        noise: Rng,
    ) -> AnyOptimizer<M, B> {
        match self.upgd_settings() {
            None => {
                let Self::AdamW(s) = self else {
                    unreachable!("only AdamW has no UPGD settings")
                };
                AnyOptimizer::AdamW(GroupedOptimizer::new(s.init::<B, M>(), groups))
            }
            Some(settings) => AnyOptimizer::Upgd(
                settings
                    .init::<B, RngNoise>(RngNoise { rng: noise })
                    .with_groups(&groups),
            ),
        }
    }
}

/// The optimizer chosen by an [`OptimizerConfig`], for a module of type `M`: a Burn
/// [`Optimizer`] whichever it is.
#[derive(Clone)]
pub enum AnyOptimizer<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// AdamW with parameter groups.
    AdamW(GroupedOptimizer<OptimizerAdaptor<AdamW, M, B>>),
    /// UPGD or AdaUPGD with host noise.
    Upgd(Upgd<B, RngNoise>),
}

/// The record of an [`AnyOptimizer`]: the active optimizer's record, the other `None`.
pub type AnyOptimizerRecord<M, B> = (
    Option<<OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record>,
    Option<<Upgd<B, RngNoise> as Optimizer<M, B>>::Record>,
);

impl<M: AutodiffModule<B>, B: AutodiffBackend> AnyOptimizer<M, B> {
    /// UPGD's utility statistics after its last step (`None` for AdamW or before a step).
    pub fn utility_stats(&self) -> Option<UtilityStats> {
        match self {
            Self::AdamW(_) => None,
            Self::Upgd(u) => u.utility_stats(),
        }
    }

    /// UPGD's noise generator (`None` for AdamW), for checkpoints.
    pub fn noise_rng(&self) -> Option<&Rng> {
        match self {
            Self::AdamW(_) => None,
            Self::Upgd(u) => Some(&u.noise().rng),
        }
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optimizer<M, B> for AnyOptimizer<M, B> {
    type Record = AnyOptimizerRecord<M, B>;

    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        match self {
            Self::AdamW(o) => o.step(lr, module, grads),
            Self::Upgd(o) => o.step(lr, module, grads),
        }
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        match self {
            Self::AdamW(o) => o.step_multi(lr, module, grads),
            Self::Upgd(o) => o.step_multi(lr, module, grads),
        }
    }

    fn to_record(&self) -> Self::Record {
        match self {
            Self::AdamW(o) => (Some(o.to_record()), None),
            Self::Upgd(o) => (None, Some(Optimizer::<M, B>::to_record(o))),
        }
    }

    /// Load the active optimizer's part of `record`; a record of the other kind leaves the
    /// state fresh.
    fn load_record(self, record: Self::Record) -> Self {
        match (self, record) {
            (Self::AdamW(o), (Some(r), _)) => Self::AdamW(o.load_record(r)),
            (Self::Upgd(o), (_, Some(r))) => Self::Upgd(Optimizer::<M, B>::load_record(o, r)),
            (o, _) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Wrap {
        optimizer: OptimizerConfig,
    }

    #[test]
    fn a_table_without_kind_is_adamw_and_kinds_round_trip() {
        let w: Wrap = toml::from_str("[optimizer]\nbeta1 = 0.8\neps = 1e-5\n").unwrap();
        assert_eq!(
            w.optimizer,
            OptimizerConfig::AdamW(AdamWSettings {
                beta1: 0.8,
                ..Default::default()
            })
        );
        for c in [
            OptimizerConfig::default(),
            OptimizerConfig::Upgd(UpgdConfig::default()),
            OptimizerConfig::AdaUpgd(AdaUpgdConfig {
                sigma: 0.01,
                ..Default::default()
            }),
        ] {
            let w = Wrap { optimizer: c };
            let text = toml::to_string(&w).unwrap();
            assert_eq!(toml::from_str::<Wrap>(&text).unwrap(), w, "{text}");
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(serde_json::from_str::<Wrap>(&json).unwrap(), w, "{json}");
        }
        let w: Wrap = toml::from_str("[optimizer]\nkind = \"adaupgd\"\nsigma = 0\n").unwrap();
        assert_eq!(w.optimizer.upgd_settings().unwrap().sigma, 0.0);
        assert!(w.optimizer.upgd_settings().unwrap().adaptive.is_some());
    }

    #[test]
    fn bad_optimizer_configs_are_clear_errors() {
        let e = toml::from_str::<Wrap>("[optimizer]\nkind = \"sgd\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown optimizer.kind `sgd`"), "{e}");
        let e = toml::from_str::<Wrap>("[optimizer]\nkind = \"upgd\"\nsigm = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sigm"), "{e}");
        let c = OptimizerConfig::Upgd(UpgdConfig {
            sigma: -0.1,
            ..Default::default()
        });
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("upgd.sigma") && e.contains("-0.1"), "{e}");
        let c = OptimizerConfig::AdaUpgd(AdaUpgdConfig {
            beta_utility: 1.0,
            ..Default::default()
        });
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("upgd.beta_utility")
        );
    }
}
