//! Training configuration: what a TOML file or the command line sets.

use quantrl_core::{ConfigError, Schedule, check_closed, check_open, check_positive, derive_seed};
use quantrl_nets::{
    Activation, ActorCriticConfig, EncoderConfig, EncoderKind, RecurrentActorCriticConfig,
};
use serde::{Deserialize, Serialize};

use crate::{DistributionalConfig, IrmPenaltyConfig, NormalizeConfig, OptimizerConfig};

/// PPO hyperparameters. Defaults are the RL-Zoo CartPole-v1 settings on top of SB3's PPO
/// defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Environments stepped together.
    pub n_envs: usize,
    /// Steps per environment per rollout (the rollout holds `n_envs * n_steps` samples).
    pub n_steps: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Passes over the rollout per update.
    pub n_epochs: usize,
    /// Discount factor.
    pub gamma: f64,
    /// GAE λ.
    pub gae_lambda: f64,
    /// Learning rate (schedule over training progress).
    pub learning_rate: Schedule,
    /// Policy clip range ε (schedule).
    pub clip_range: Schedule,
    /// Value clip range around the rollout's values; `None` disables value clipping.
    pub clip_range_vf: Option<f64>,
    /// Entropy bonus coefficient.
    pub ent_coef: f64,
    /// Value loss coefficient.
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Stop an update's epochs early when the approximate KL of a minibatch exceeds
    /// `1.5 * target_kl` (SB3's rule); `None` disables.
    pub target_kl: Option<f64>,
    /// Normalize advantages per minibatch.
    pub normalize_advantage: bool,
    /// Learning-rate multiplier of the value head (a parameter group).
    pub value_lr_multiplier: f64,
    /// A quantile critic (and its CVaR objective) instead of the scalar critic; `None`
    /// (the default) keeps the scalar critic.
    pub distributional: Option<DistributionalConfig>,
    /// An IRM penalty across the environment's regime labels; `None` (the default) for none.
    pub irm: Option<IrmPenaltyConfig>,
    /// Observation and reward normalization (SB3's `VecNormalize`, see
    /// [`crate::normalize`]); `None` (the default): neither.
    pub normalize: Option<NormalizeConfig>,
    /// Recurrent policies only: length of the training sequences (backpropagation through
    /// time). Each environment's `n_steps` are cut into chunks of `seq_len` steps, each
    /// starting from the recurrent state stored at rollout time; a last, shorter chunk is
    /// padded and its padded steps are left out of every loss term. `None`: whole rollouts
    /// (`seq_len = n_steps`). `batch_size` must be a multiple of it.
    pub seq_len: Option<usize>,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            n_envs: 8,
            n_steps: 32,
            batch_size: 256,
            n_epochs: 20,
            gamma: 0.98,
            gae_lambda: 0.8,
            learning_rate: Schedule::Linear {
                start: 1e-3,
                end: 0.0,
            },
            clip_range: Schedule::Linear {
                start: 0.2,
                end: 0.0,
            },
            clip_range_vf: None,
            ent_coef: 0.0,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            normalize_advantage: true,
            value_lr_multiplier: 1.0,
            distributional: None,
            irm: None,
            normalize: None,
            seq_len: None,
        }
    }
}

impl PpoConfig {
    /// Check every field and the relations between them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n_envs == 0 {
            return Err(ConfigError::out_of_range("ppo.n_envs", 0, ">= 1"));
        }
        if self.n_steps == 0 {
            return Err(ConfigError::out_of_range("ppo.n_steps", 0, ">= 1"));
        }
        if self.n_epochs == 0 {
            return Err(ConfigError::out_of_range("ppo.n_epochs", 0, ">= 1"));
        }
        let rollout = self.n_envs * self.n_steps;
        if self.batch_size == 0 || self.batch_size > rollout {
            return Err(ConfigError::out_of_range(
                "ppo.batch_size",
                self.batch_size,
                format!(
                    "in [1, n_envs * n_steps = {rollout}] (a minibatch cannot be larger than the rollout)"
                ),
            ));
        }
        if self.normalize_advantage && self.batch_size == 1 {
            return Err(ConfigError::Inconsistent(
                "ppo.normalize_advantage needs ppo.batch_size > 1".into(),
            ));
        }
        check_closed("ppo.gamma", self.gamma, 0.0, 1.0)?;
        check_closed("ppo.gae_lambda", self.gae_lambda, 0.0, 1.0)?;
        self.learning_rate
            .validate_with(|v| check_closed("ppo.learning_rate", v, 0.0, 1.0))?;
        check_positive("ppo.learning_rate (start)", self.learning_rate.initial())?;
        check_open("ppo.clip_range", self.clip_range.initial(), 0.0, 1.0)?;
        self.clip_range
            .validate_with(|v| check_closed("ppo.clip_range", v, 0.0, 1.0 - f64::EPSILON))?;
        if let Some(c) = self.clip_range_vf {
            check_positive("ppo.clip_range_vf", c)?;
        }
        check_closed("ppo.ent_coef", self.ent_coef, 0.0, f64::MAX)?;
        check_closed("ppo.vf_coef", self.vf_coef, 0.0, f64::MAX)?;
        check_positive("ppo.max_grad_norm", self.max_grad_norm)?;
        if let Some(k) = self.target_kl {
            check_positive("ppo.target_kl", k)?;
        }
        check_positive("ppo.value_lr_multiplier", self.value_lr_multiplier)?;
        if let Some(d) = &self.distributional {
            d.validate()?;
        }
        if let Some(n) = &self.normalize {
            n.validate()?;
        }
        if let Some(irm) = &self.irm {
            irm.validate()?;
        }
        if let Some(l) = self.seq_len
            && (l == 0 || l > self.n_steps)
        {
            return Err(ConfigError::out_of_range(
                "ppo.seq_len",
                l,
                format!("in [1, n_steps = {}]", self.n_steps),
            ));
        }
        Ok(())
    }

    /// The training sequence length for a recurrent policy (`seq_len`, or `n_steps`).
    pub fn sequence_len(&self) -> usize {
        self.seq_len.unwrap_or(self.n_steps)
    }
}

/// The policy network, as configs describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Hidden widths of each trunk.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// One trunk shared by policy and value, or one each.
    pub shared_trunk: bool,
    /// SB3-style orthogonal initialization.
    pub ortho_init: bool,
    /// A sequence encoder (GRU, LSTM, CLSTM, GTrXL, transformer) in front of the heads: the
    /// policy is then recurrent and trained by recurrent PPO. `None`: the MLP trunks above.
    pub encoder: Option<EncoderSettings>,
    /// Run the MLP actor-critic (no encoder, scalar critic) on the host for rollouts and
    /// training (`quantrl_nets::host_mlp` and `quantrl_losses::host`: hand-derived gradients,
    /// several times faster than Burn's graph for small networks on a CPU, checked against
    /// it in tests). The optimizer step stays Burn's. Ignored, with Burn's graph used
    /// instead, for quantile critics and IRM penalties. Turn it off to keep a large network
    /// on a GPU device.
    pub host_mlp: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            activation: Activation::Tanh,
            shared_trunk: false,
            ortho_init: true,
            encoder: None,
            host_mlp: true,
        }
    }
}

impl PolicyConfig {
    /// Check the widths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hidden.contains(&0) {
            return Err(ConfigError::out_of_range(
                "policy.hidden",
                format!("{:?}", self.hidden),
                "widths >= 1",
            ));
        }
        if let Some(e) = &self.encoder {
            e.validate()?;
        }
        Ok(())
    }

    /// Whether the policy is recurrent (has a sequence encoder).
    pub fn is_recurrent(&self) -> bool {
        self.encoder.is_some()
    }

    /// The recurrent network config for `obs_dim` inputs and `n_actions` actions, when the
    /// policy has an encoder; the observation width is checked against the encoder here.
    pub fn recurrent_network(
        &self,
        obs_dim: usize,
        n_actions: usize,
        seed: u64,
    ) -> Result<Option<RecurrentActorCriticConfig>, ConfigError> {
        let Some(e) = &self.encoder else {
            return Ok(None);
        };
        let encoder = EncoderConfig::new(e.kind)
            .with_hidden(e.hidden)
            .with_num_layers(e.num_layers)
            .with_window(e.window)
            .with_heads(e.heads)
            .with_memory_len(e.memory_len)
            .with_kernel_size(e.kernel_size)
            .with_activation(self.activation);
        let config = RecurrentActorCriticConfig::new(obs_dim, n_actions, encoder)
            .with_shared_encoder(e.shared)
            .with_seed(seed);
        config.validate().map_err(|err| {
            ConfigError::Inconsistent(format!(
                "policy.encoder does not fit the environment: {err}"
            ))
        })?;
        Ok(Some(config))
    }

    /// The network config for an environment with `obs_dim` inputs and `n_actions` actions.
    pub fn network(&self, obs_dim: usize, n_actions: usize, seed: u64) -> ActorCriticConfig {
        ActorCriticConfig::new(obs_dim, n_actions)
            .with_hidden(self.hidden.clone())
            .with_activation(self.activation)
            .with_shared_trunk(self.shared_trunk)
            .with_ortho_init(self.ortho_init)
            .with_seed(seed)
    }
}

/// The sequence encoder of a recurrent policy (`[policy.encoder]` in a TOML config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderSettings {
    /// Which encoder: `gru`, `lstm`, `clstm`, `gtrxl`, `transformer` (or `mlp`, stateless).
    pub kind: EncoderKind,
    /// Width: RNN hidden size, CLSTM channels, GTrXL/transformer model width.
    pub hidden: usize,
    /// Layers (RNN, GTrXL, transformer).
    pub num_layers: usize,
    /// Window length of a window-major observation (CLSTM, transformer).
    pub window: usize,
    /// Attention heads (GTrXL, transformer).
    pub heads: usize,
    /// Memory length (GTrXL).
    pub memory_len: usize,
    /// Convolution kernel (CLSTM).
    pub kernel_size: usize,
    /// One encoder shared by policy and value (`true`), or one each (`false`, sb3-contrib's
    /// default).
    pub shared: bool,
    /// Train GRU and LSTM encoders with backpropagation through time on the host
    /// (`quantrl_nets::host_bptt`: hand-derived gradients, several times faster than
    /// autodiff on CPU backends; equal up to float rounding). `false`: Burn's autodiff on the
    /// backend's device. Other encoders always use autodiff.
    pub host_bptt: bool,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            kind: EncoderKind::Gru,
            hidden: 64,
            num_layers: 1,
            window: 1,
            heads: 2,
            memory_len: 16,
            kernel_size: 3,
            shared: false,
            host_bptt: true,
        }
    }
}

impl EncoderSettings {
    /// Check the sizes that do not depend on the environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            ("policy.encoder.hidden", self.hidden),
            ("policy.encoder.num_layers", self.num_layers),
            ("policy.encoder.window", self.window),
            ("policy.encoder.heads", self.heads),
            ("policy.encoder.kernel_size", self.kernel_size),
        ] {
            if v == 0 {
                return Err(ConfigError::out_of_range(field, v, ">= 1"));
            }
        }
        if self.kind == EncoderKind::Gtrxl && self.memory_len == 0 {
            return Err(ConfigError::out_of_range(
                "policy.encoder.memory_len",
                0,
                ">= 1 for gtrxl",
            ));
        }
        Ok(())
    }
}

/// Everything one training run needs: environment, budget, seed, algorithm, network,
/// optimizer and evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Environment name (see `quantrl_envs::ENV_NAMES`).
    pub env: String,
    /// Master seed: network init, environments and sampling derive from it.
    pub seed: u64,
    /// Environment steps to train for (summed over environments).
    pub total_steps: u64,
    /// PPO hyperparameters.
    pub ppo: PpoConfig,
    /// Network.
    pub policy: PolicyConfig,
    /// Optimizer: AdamW (a table without `kind`, as before), UPGD or AdaUPGD.
    pub optimizer: OptimizerConfig,
    /// Periodic evaluation.
    pub eval: EvalConfig,
    /// Write a checkpoint every this many environment steps (0: only at the end).
    pub checkpoint_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            env: "cartpole".into(),
            seed: 0,
            total_steps: 100_000,
            ppo: PpoConfig::default(),
            policy: PolicyConfig::default(),
            optimizer: OptimizerConfig::default(),
            eval: EvalConfig::default(),
            checkpoint_every: 0,
        }
    }
}

impl TrainConfig {
    /// Check the whole config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.total_steps == 0 {
            return Err(ConfigError::out_of_range("total_steps", 0, ">= 1"));
        }
        self.ppo.validate()?;
        self.policy.validate()?;
        if self.policy.is_recurrent() {
            let l = self.ppo.sequence_len();
            if !self.ppo.batch_size.is_multiple_of(l) {
                return Err(ConfigError::Inconsistent(format!(
                    "ppo.batch_size = {} must be a whole number of training sequences of \
                     ppo.seq_len = {l} steps",
                    self.ppo.batch_size
                )));
            }
        } else if self.ppo.seq_len.is_some() {
            return Err(ConfigError::Inconsistent(
                "ppo.seq_len applies to recurrent policies only (set policy.encoder)".into(),
            ));
        }
        self.optimizer.validate()?;
        self.eval.validate()
    }

    /// The network for an environment with `obs_dim` inputs and `n_actions` actions: the
    /// policy config, the critic the PPO config asks for, weights seeded from `seed`.
    pub fn network(&self, obs_dim: usize, n_actions: usize) -> ActorCriticConfig {
        let mut base = self
            .policy
            .network(obs_dim, n_actions, derive_seed(self.seed, 1));
        if let Some(n) = self.ppo.normalize.as_ref().filter(|n| n.obs) {
            base = base
                .with_normalize_obs(true)
                .with_clip_obs(n.clip_obs as f32);
        }
        match &self.ppo.distributional {
            Some(d) => d.network(base),
            None => base,
        }
    }

    /// The recurrent network (`policy.encoder`; `None` without one), with the critic the PPO
    /// config asks for, weights seeded from `seed`.
    pub fn recurrent_network(
        &self,
        obs_dim: usize,
        n_actions: usize,
    ) -> Result<Option<RecurrentActorCriticConfig>, ConfigError> {
        let base = self
            .policy
            .recurrent_network(obs_dim, n_actions, derive_seed(self.seed, 1))?;
        let base = match (&self.ppo.normalize, base) {
            (Some(n), Some(base)) if n.obs => Some(
                base.with_normalize_obs(true)
                    .with_clip_obs(n.clip_obs as f32),
            ),
            (_, base) => base,
        };
        Ok(match (&self.ppo.distributional, base) {
            (Some(d), Some(base)) => Some(d.recurrent_network(base)),
            (_, base) => base,
        })
    }

    /// Parse and validate a TOML document; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let c: TrainConfig = toml::from_str(text).map_err(|e| {
            ConfigError::Inconsistent(format!("invalid TOML config: {}", e.to_string().trim()))
        })?;
        c.validate()?;
        Ok(c)
    }
}

/// Periodic deterministic evaluation during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many environment steps (0 disables periodic evaluation).
    pub every: u64,
    /// Episodes per evaluation.
    pub episodes: usize,
    /// Stop training once the mean evaluation return reaches this.
    pub stop_at_return: Option<f64>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 10_000,
            episodes: 20,
            stop_at_return: None,
        }
    }
}

impl EvalConfig {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.episodes == 0 {
            return Err(ConfigError::out_of_range("eval.episodes", 0, ">= 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = TrainConfig::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(TrainConfig::from_toml(&text).unwrap(), c);
    }

    #[test]
    fn shipped_configs_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // Walk-forward configs are another format (the CLI's own test checks them).
            let walk_forward = path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("walk_forward"));
            if path.extension().is_some_and(|e| e == "toml") && !walk_forward {
                let text = std::fs::read_to_string(&path).unwrap();
                TrainConfig::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 1, "no configs found in {}", dir.display());
    }

    #[test]
    fn risk_options_parse_round_trip_and_name_bad_fields() {
        let text = r#"
[ppo]
value_lr_multiplier = 2.0
[ppo.distributional]
n_quantiles = 16
twin_critics = true
twin_reduction = "elementwise_min"
[ppo.distributional.cvar]
alpha = 0.05
objective = { constraint = { threshold = -0.1, lr = 0.01, multiplier = 0.0 } }
[ppo.irm]
penalty_weight = 5.0
target = "both"
[optimizer]
kind = "adaupgd"
sigma = 0.001
"#;
        let c = TrainConfig::from_toml(text).unwrap();
        let d = c.ppo.distributional.as_ref().unwrap();
        assert_eq!((d.n_quantiles, d.twin_critics), (16, true));
        assert_eq!(c.optimizer.name(), "adaupgd");
        assert_eq!(
            TrainConfig::from_toml(&toml::to_string(&c).unwrap()).unwrap(),
            c
        );
        let net = c.network(4, 2);
        assert_eq!((net.n_quantiles, net.twin_critic), (16, true));

        let error = |t: &str| TrainConfig::from_toml(t).unwrap_err();
        for (t, field) in [
            (
                "[ppo.distributional.cvar]\nalpha = 1.5\n",
                "ppo.distributional.cvar.alpha",
            ),
            (
                "[ppo.distributional.cvar]\nalpha = 0.0\n",
                "ppo.distributional.cvar.alpha",
            ),
            (
                "[ppo.distributional]\nn_quantiles = 0\n",
                "ppo.distributional.n_quantiles",
            ),
            ("[optimizer]\nkind = \"upgd\"\nsigma = -0.5\n", "upgd.sigma"),
            (
                "[optimizer]\nkind = \"adaupgd\"\nsigma = -0.5\n",
                "upgd.sigma",
            ),
            (
                "[ppo.irm]\npenalty_weight = -1.0\n",
                "ppo.irm.penalty_weight",
            ),
        ] {
            let e = error(t);
            assert!(matches!(e, ConfigError::OutOfRange { .. }), "{t}: {e:?}");
            assert!(e.to_string().contains(field), "{t}: {e}");
        }
        let e = error("[optimizer]\nkind = \"rmsprop\"\n").to_string();
        assert!(e.contains("rmsprop"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = TrainConfig::from_toml("[ppo]\nclip_range = 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ppo.clip_range") && e.contains("1.5"), "{e}");
        let e = TrainConfig::from_toml("[ppo]\nbatch_size = 512\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ppo.batch_size") && e.contains("512") && e.contains("256"),
            "{e}"
        );
        let e = TrainConfig::from_toml("[ppo]\nlearning_rat = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field") && e.contains("learning_rat"),
            "{e}"
        );
        let e = TrainConfig::from_toml("total_steps = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("total_steps"), "{e}");
    }
}
