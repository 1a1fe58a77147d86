//! Checkpoints: weights, optimizer state, config, random-generator state and counters, written
//! atomically, with a `format_version`, so that `resume` continues the same run.
//!
//! A checkpoint is a directory:
//!
//! | file | content |
//! | --- | --- |
//! | `state.json` | manifest: `format_version`, config, counters, RNG and environment state, and the size and FNV-1a hash of every other file |
//! | `model.mpk` | network weights (Burn record, named MessagePack, full precision) |
//! | `optimizer.mpk` | optimizer state (Burn record of the configured optimizer: AdamW's, or UPGD's) |
//!
//! Every file is written to a temporary file in the same directory, flushed to disk and
//! renamed over the old one; `state.json` is written last, so a crash leaves either the old
//! checkpoint or the new one, never a mix that loads. Loading checks the manifest, the
//! version, the sizes and hashes before decoding anything, and never panics on damaged input.

use std::fs::{self, File};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::policy::tensor_to_host;

use burn::module::AutodiffModule;
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use quantrl_core::{Rng, VecEnv};
use quantrl_losses::cvar::CvarObjective;
use quantrl_optim::RngNoise;
use serde::{Deserialize, Serialize};

use crate::optimizer::AnyOptimizer;

use crate::network::{PolicyNetwork, state_from_host, state_shapes};
use crate::{
    AlgoError, CheckpointError, EpisodeTracker, NormalizerState, Ppo, RunningMeanStd, TrainConfig,
};

/// The checkpoint format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const STATE: &str = "state.json";
const MODEL: &str = "model.mpk";
const OPTIM: &str = "optimizer.mpk";

/// One file listed in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the checkpoint directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// FNV-1a 64-bit hash, hex.
    pub fnv64: String,
}

/// The manifest of a checkpoint (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Format of this checkpoint ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// What wrote it.
    pub kind: String,
    /// quantrl version that wrote it.
    pub quantrl_version: String,
    /// The training configuration.
    pub config: TrainConfig,
    /// Name of the environment trained on.
    pub env_name: String,
    /// Observation length.
    pub obs_dim: usize,
    /// Number of actions.
    pub n_actions: usize,
    /// Environment steps taken.
    pub num_timesteps: u64,
    /// Updates done.
    pub n_updates: u64,
    /// The learner's random generator.
    pub rng: Rng,
    /// Current observations of the environments.
    pub obs: Vec<f32>,
    /// Episode-start flags of the current observations.
    pub episode_starts: Vec<f32>,
    /// Episode statistics.
    pub episodes: EpisodeTracker,
    /// The environments' own state, when they can save it.
    pub env_state: Option<String>,
    /// The recurrent policy's carried state (one vector per state tensor, `[n_envs, a, b]`
    /// row-major); empty for a feed-forward policy.
    #[serde(default)]
    pub recurrent_state: Vec<Vec<f32>>,
    /// Files of the checkpoint with their sizes and hashes.
    pub files: Vec<FileEntry>,
    /// UPGD's perturbation-noise generator (absent for AdamW and in older checkpoints).
    #[serde(default)]
    pub optimizer_noise: Option<Rng>,
    /// The CVaR objective with its current multiplier (distributional PPO with a CVaR
    /// objective; absent otherwise and in older checkpoints).
    #[serde(default)]
    pub cvar_objective: Option<CvarObjective>,
    /// Observation and reward normalization statistics (`ppo.normalize`; absent otherwise and
    /// in older checkpoints). The network's own copy of the observation statistics is in its
    /// weights.
    #[serde(default)]
    pub normalizer: Option<NormalizerState>,
}

/// FNV-1a, 64 bits.
pub fn fnv64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Write `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Read and validate only a checkpoint's manifest (`state.json`): existence, JSON,
/// `format_version` and config. The record files are not read.
pub fn read_state(dir: &Path) -> Result<CheckpointState, CheckpointError> {
    if !dir.is_dir() {
        return Err(CheckpointError::Missing {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let state_path = dir.join(STATE);
    if !state_path.is_file() {
        return Err(CheckpointError::Missing {
            path: dir.to_path_buf(),
            reason: format!("{STATE} not found"),
        });
    }
    let text = fs::read_to_string(&state_path)
        .map_err(|e| corrupt(&state_path, format!("unreadable: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| corrupt(&state_path, format!("not valid JSON: {e}")))?;
    let found = value.get("format_version").and_then(|v| v.as_u64());
    match found {
        None => return Err(corrupt(&state_path, "no format_version")),
        Some(v) if v != FORMAT_VERSION as u64 => {
            return Err(CheckpointError::UnsupportedVersion {
                path: state_path,
                found: v as u32,
                supported: FORMAT_VERSION,
            });
        }
        _ => {}
    }
    let state: CheckpointState = serde_json::from_value(value)
        .map_err(|e| corrupt(&state_path, format!("unexpected content: {e}")))?;
    state
        .config
        .validate()
        .map_err(|e| corrupt(&state_path, format!("invalid config: {e}")))?;
    Ok(state)
}

/// Read and verify a checkpoint's manifest and files; returns the manifest and the bytes of
/// the model and optimizer records.
pub fn read_checkpoint(dir: &Path) -> Result<(CheckpointState, Vec<u8>, Vec<u8>), CheckpointError> {
    let state = read_state(dir)?;
    let state_path = dir.join(STATE);
    let read = |name: &str| -> Result<Vec<u8>, CheckpointError> {
        let path = dir.join(name);
        let entry = state
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| corrupt(&state_path, format!("manifest does not list {name}")))?;
        if !path.is_file() {
            return Err(CheckpointError::Missing {
                path: dir.to_path_buf(),
                reason: format!("{name} not found"),
            });
        }
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        if bytes.len() as u64 != entry.bytes || fnv64(&bytes) != entry.fnv64 {
            return Err(corrupt(
                &path,
                format!(
                    "size or hash differs from the manifest ({} bytes, expected {})",
                    bytes.len(),
                    entry.bytes
                ),
            ));
        }
        Ok(bytes)
    };
    let model = read(MODEL)?;
    let optim = read(OPTIM)?;
    Ok((state, model, optim))
}

/// Decode a Burn record, mapping decoding errors and panics inside Burn to
/// [`CheckpointError::Corrupt`].
fn decode<B: burn::tensor::backend::Backend, R: burn::record::Record<B>>(
    bytes: Vec<u8>,
    path: &Path,
    device: &B::Device,
) -> Result<R, CheckpointError> {
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
    match catch_unwind(AssertUnwindSafe(|| {
        Recorder::<B>::load::<R>(&recorder, bytes, device)
    })) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(corrupt(path, format!("cannot decode record: {e:?}"))),
        Err(_) => Err(corrupt(path, "cannot decode record")),
    }
}

/// Load only the network of a checkpoint (for evaluation and prediction). `M` is the network
/// type: [`ActorCritic`](quantrl_nets::ActorCritic) for a feed-forward policy,
/// [`RecurrentActorCritic`](quantrl_nets::RecurrentActorCritic) when the checkpoint's
/// `config.policy.encoder` is set (see [`CheckpointState::config`] via [`read_state`]); the
/// wrong one is a [`CheckpointError::Mismatch`].
pub fn load_model<B: burn::tensor::backend::Backend, M: PolicyNetwork<B>>(
    dir: &Path,
    device: &B::Device,
) -> Result<(CheckpointState, M), CheckpointError> {
    let (state, model_bytes, _) = read_checkpoint(dir)?;
    let model = build_model::<B, M>(&state, model_bytes, dir, device)?;
    Ok((state, model))
}

fn build_model<B: burn::tensor::backend::Backend, M: PolicyNetwork<B>>(
    state: &CheckpointState,
    bytes: Vec<u8>,
    dir: &Path,
    device: &B::Device,
) -> Result<M, CheckpointError> {
    let path = dir.join(MODEL);
    let fresh =
        M::from_config(&state.config, state.obs_dim, state.n_actions, device).map_err(|e| {
            CheckpointError::Mismatch {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
    let record = decode::<B, <M as Module<B>>::Record>(bytes, &path, device)?;
    match catch_unwind(AssertUnwindSafe(|| fresh.load_record(record))) {
        Ok(m) => Ok(m),
        Err(_) => Err(CheckpointError::Mismatch {
            path,
            reason: "weights do not fit the network in the config".into(),
        }),
    }
}

impl<B, E, M> Ppo<B, E, M>
where
    B: AutodiffBackend,
    E: VecEnv,
    M: PolicyNetwork<B> + AutodiffModule<B>,
    M::InnerModule: PolicyNetwork<B::InnerBackend>,
{
    /// Write a checkpoint to `dir` (created if needed), atomically file by file with the
    /// manifest last.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf, AlgoError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let model_bytes = Recorder::<B>::record(&recorder, self.model.clone().into_record(), ())
            .map_err(|e| corrupt(&dir.join(MODEL), format!("cannot encode: {e:?}")))?;
        // Only the active optimizer's record: an AdamW checkpoint is byte-compatible with the
        // ones written before the optimizer could be chosen.
        let optim_bytes = match &self.optim {
            AnyOptimizer::AdamW(o) => {
                Recorder::<B>::record(&recorder, Optimizer::<M, B>::to_record(o), ())
            }
            AnyOptimizer::Upgd(o) => {
                Recorder::<B>::record(&recorder, Optimizer::<M, B>::to_record(o), ())
            }
        }
        .map_err(|e| corrupt(&dir.join(OPTIM), format!("cannot encode: {e:?}")))?;
        let mut files = Vec::new();
        for (name, bytes) in [(MODEL, &model_bytes), (OPTIM, &optim_bytes)] {
            let path = dir.join(name);
            write_atomic(&path, bytes).map_err(io_err(&path))?;
            files.push(FileEntry {
                name: name.into(),
                bytes: bytes.len() as u64,
                fnv64: fnv64(bytes),
            });
        }
        let state = CheckpointState {
            format_version: FORMAT_VERSION,
            kind: "quantrl-ppo".into(),
            quantrl_version: env!("CARGO_PKG_VERSION").into(),
            config: self.config.clone(),
            env_name: self.env.name().to_string(),
            obs_dim: self.obs_dim_(),
            n_actions: self.n_actions_(),
            num_timesteps: self.num_timesteps,
            n_updates: self.n_updates,
            rng: self.rng.clone(),
            obs: self.batch.obs.clone(),
            episode_starts: self.episode_starts.clone(),
            episodes: self.episodes.clone(),
            env_state: self.env.save_state(),
            recurrent_state: self
                .state
                .tensors
                .iter()
                .map(|t| tensor_to_host(t.clone()))
                .collect(),
            files,
            optimizer_noise: self.optim.noise_rng().cloned(),
            cvar_objective: self.dist.as_ref().and_then(|d| d.objective.clone()),
            normalizer: self.norm.clone(),
        };
        let path = dir.join(STATE);
        let text = serde_json::to_string_pretty(&state).expect("checkpoint state serializes");
        write_atomic(&path, text.as_bytes()).map_err(io_err(&path))?;
        Ok(dir.to_path_buf())
    }

    /// Continue the run saved in `dir` on `env` (which must be the same environment with the
    /// same number of copies). `total_steps`, when given, replaces the budget (e.g. to train
    /// further); everything else comes from the checkpoint.
    pub fn resume(
        dir: &Path,
        env: E,
        total_steps: Option<u64>,
        device: &B::Device,
    ) -> Result<Self, AlgoError> {
        let (state, model_bytes, optim_bytes) = read_checkpoint(dir)?;
        let mismatch = |reason: String| CheckpointError::Mismatch {
            path: dir.to_path_buf(),
            reason,
        };
        if env.name() != state.env_name {
            return Err(mismatch(format!(
                "it was trained on {}, not {}",
                state.env_name,
                env.name()
            ))
            .into());
        }
        if env.num_envs() != state.config.ppo.n_envs
            || env.observation_space().flat_dim() != state.obs_dim
        {
            return Err(mismatch(format!(
                "it expects {} environments with {} observations",
                state.config.ppo.n_envs, state.obs_dim
            ))
            .into());
        }
        if state.obs.len() != state.config.ppo.n_envs * state.obs_dim
            || state.episode_starts.len() != state.config.ppo.n_envs
        {
            return Err(corrupt(
                &dir.join(STATE),
                "observation buffers have the wrong length",
            )
            .into());
        }
        let mut config = state.config.clone();
        if let Some(t) = total_steps {
            config.total_steps = t;
        }
        config.validate()?;
        let model = build_model::<B, M>(&state, model_bytes, dir, device)?;
        let optim_path = dir.join(OPTIM);
        let optim_record: crate::optimizer::AnyOptimizerRecord<M, B> =
            if config.optimizer.upgd_settings().is_some() {
                let r = decode::<B, <quantrl_optim::Upgd<B, RngNoise> as Optimizer<M, B>>::Record>(
                    optim_bytes,
                    &optim_path,
                    device,
                )?;
                (None, Some(r))
            } else {
                let r = decode::<
                B,
                <burn::optim::adaptor::OptimizerAdaptor<burn::optim::AdamW, M, B> as Optimizer<
                    M,
                    B,
                >>::Record,
            >(optim_bytes, &optim_path, device)?;
                (Some(r), None)
            };
        let mut learner = Self::new(config, env, device)?;
        let shapes = state_shapes(&model, device);
        let n = learner.config.ppo.n_envs;
        if state.recurrent_state.len() != shapes.len()
            || state
                .recurrent_state
                .iter()
                .zip(&shapes)
                .any(|(v, [a, b])| v.len() != n * a * b)
        {
            return Err(corrupt(
                &dir.join(STATE),
                "the recurrent state does not fit the policy in the config",
            )
            .into());
        }
        // `new` reset the environments; put the saved ones back, or start fresh episodes
        // from a new seed when the environment cannot save its state.
        match &state.env_state {
            Some(s) => {
                learner.env.load_state(s)?;
                learner.batch.obs.copy_from_slice(&state.obs);
                learner.episode_starts = state.episode_starts.clone();
                learner.state = state_from_host(&state.recurrent_state, &shapes, n, device);
            }
            None => {
                let seed = quantrl_core::derive_seed(learner.config.seed, 2 + state.n_updates);
                learner.env.reset(Some(seed), &mut learner.batch);
            }
        }
        learner.optim = Self::make_optimizer(&learner.config, &model, state.optimizer_noise)
            .load_record(optim_record);
        if let (Some(dist), Some(objective)) = (&mut learner.dist, state.cvar_objective) {
            dist.objective = Some(objective);
        }
        if learner.norm.is_some() {
            let mut norm = state.normalizer.filter(|s| {
                let fits = |r: &Option<RunningMeanStd>, dim: usize| {
                    r.as_ref().is_none_or(|r| {
                        r.dim() == dim
                            && r.count.is_finite()
                            && r.mean.iter().chain(&r.var).all(|v| v.is_finite())
                    })
                };
                let want = learner.norm.as_ref().expect("checked");
                s.obs.is_some() == want.obs.is_some()
                    && s.ret.is_some() == want.ret.is_some()
                    && fits(&s.obs, learner.obs_dim_())
                    && fits(&s.ret, 1)
                    && s.returns.len() == n
                    && s.returns.iter().all(|v| v.is_finite())
            });
            let Some(norm) = norm.as_mut() else {
                return Err(corrupt(
                    &dir.join(STATE),
                    "the normalization statistics are missing or do not fit ppo.normalize",
                )
                .into());
            };
            if state.env_state.is_none() {
                norm.returns.fill(0.0);
            }
            learner.norm = Some(norm.clone());
        }
        learner.model = model;
        learner.rng = state.rng;
        learner.num_timesteps = state.num_timesteps;
        learner.n_updates = state.n_updates;
        learner.episodes = state.episodes;
        Ok(learner)
    }
}
