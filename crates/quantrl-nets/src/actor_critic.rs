//! Actor-critic networks for discrete actions: a categorical policy head and a value head
//! over a shared trunk or separate (dual) policy and value trunks.
//!
//! The critic is a scalar state value by default. With `n_quantiles > 0` it is a quantile
//! critic (QR-DQN's parameterization, Dabney et al. 2018, applied to the state value): the
//! value head outputs `N` quantiles of the return distribution at the levels
//! `τ_i = (2i + 1) / 2N`, and `twin_critic` adds a second, independently initialized quantile
//! critic (its own trunk in the dual layout, its own head on the shared trunk). The state value
//! is then the mean of the critics' distribution combined by [`CriticReduction`].

use burn::config::Config;
use burn::module::{Module, ParamId};
use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};
use quantrl_core::Rng;
use serde::{Deserialize, Serialize};

use crate::obs_norm::normalize_opt;
use crate::{Activation, Mlp, ObsNormalizer, ParallelMlp, mlp::linear_orthogonal};

/// Configuration of an [`ActorCritic`].
#[derive(Config, Debug)]
pub struct ActorCriticConfig {
    /// Length of one observation.
    pub obs_dim: usize,
    /// Number of discrete actions (the width of the policy logits).
    pub n_actions: usize,
    /// Widths of the hidden layers of each trunk.
    #[config(default = "vec![64, 64]")]
    pub hidden: Vec<usize>,
    /// Hidden activation.
    #[config(default = "Activation::Tanh")]
    pub activation: Activation,
    /// One trunk shared by policy and value (`true`) or one trunk each (`false`, SB3's
    /// default for MLP policies).
    #[config(default = false)]
    pub shared_trunk: bool,
    /// Orthogonal initialization as SB3 and CleanRL do: gain √2 for hidden layers, 0.01 for
    /// the policy head, 1 for the value head, zero biases.
    #[config(default = true)]
    pub ortho_init: bool,
    /// Seed of the initial weights.
    #[config(default = 0)]
    pub seed: u64,
    /// Quantiles of the critic's return distribution; 0 (the default) is a scalar critic.
    #[config(default = 0)]
    pub n_quantiles: usize,
    /// A second quantile critic (needs `n_quantiles > 0`).
    #[config(default = false)]
    pub twin_critic: bool,
    /// How the twin critics' distributions combine into one (used when `twin_critic`).
    #[config(default = "CriticReduction::MinOfMeans")]
    pub critic_reduction: CriticReduction,
    /// Normalize observations in front of the trunks with statistics the learner sets
    /// ([`ObsNormalizer`]); off by default.
    #[config(default = false)]
    pub normalize_obs: bool,
    /// Clip bound of the normalized observations (with `normalize_obs`).
    #[config(default = 10.0)]
    pub clip_obs: f32,
}

/// How two (or more) quantile critics combine into one distribution `[batch, N]`.
///
/// Both are pessimistic, as twin critics are meant to be (TD3: Fujimoto et al. 2018; TQC:
/// Kuznetsov et al. 2020 truncate the pooled atoms for the same reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticReduction {
    /// Per sample, the whole distribution of the critic whose mean is lowest (TD3's clipped
    /// double-Q applied to the mean; the shape stays one critic's).
    #[default]
    MinOfMeans,
    /// Per sample and quantile level, the minimum over critics of their sorted quantiles: the
    /// lower envelope of the quantile functions, which is itself a quantile function and is
    /// at least as pessimistic as [`CriticReduction::MinOfMeans`] at every level.
    ElementwiseMin,
}

/// Combine per-critic quantiles `[batch, n_critics, N]` into one distribution `[batch, N]`
/// (see [`CriticReduction`]); one critic passes through unchanged (not sorted).
///
/// # Shapes
/// - `quantiles`: `[batch, n_critics, N]`
/// - output: `[batch, N]`
pub fn reduce_critics<B: Backend>(
    quantiles: Tensor<B, 3>,
    reduction: CriticReduction,
) -> Tensor<B, 2> {
    let [n, c, q] = quantiles.dims();
    if c == 1 {
        return quantiles.reshape([n, q]);
    }
    match reduction {
        CriticReduction::MinOfMeans => {
            let lowest = quantiles.clone().mean_dim(2).argmin(1); // [n, 1, 1]
            quantiles
                .gather(1, lowest.expand([n, 1, q]))
                .reshape([n, q])
        }
        CriticReduction::ElementwiseMin => quantiles.sort(2).min_dim(1).reshape([n, q]),
    }
}

/// Per-critic quantiles `[batch, N]` stacked into `[batch, n_critics, N]`, and the state value
/// `[batch]`: the mean of the distribution they combine into (see [`reduce_critics`]).
pub fn combine_quantile_critics<B: Backend>(
    critics: Vec<Tensor<B, 2>>,
    reduction: CriticReduction,
) -> (Tensor<B, 1>, Tensor<B, 3>) {
    let quantiles = Tensor::stack::<3>(critics, 1);
    let [n, _, _] = quantiles.dims();
    let values = reduce_critics(quantiles.clone(), reduction)
        .mean_dim(1)
        .reshape([n]);
    (values, quantiles)
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct ActorCriticOutput<B: Backend> {
    /// Unnormalized action log-probabilities, `[batch, n_actions]`.
    pub logits: Tensor<B, 2>,
    /// State values, `[batch]`: the scalar critic's output, or the mean of the quantile
    /// distribution (twin critics combined by the config's [`CriticReduction`]).
    pub values: Tensor<B, 1>,
    /// Quantiles of each critic, `[batch, n_critics, N]`, when the critic is distributional
    /// (unsorted: the loss does not force monotonicity; sort before reading them as a
    /// quantile function).
    pub quantiles: Option<Tensor<B, 3>>,
}

/// An MLP actor-critic (categorical policy and state value).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use quantrl_nets::ActorCriticConfig;
///
/// let device = Default::default();
/// let net = ActorCriticConfig::new(4, 2).init::<NdArray>(&device);
/// let out = net.forward(Tensor::zeros([3, 4], &device));
/// assert_eq!(out.logits.dims(), [3, 2]);
/// assert_eq!(out.values.dims(), [3]);
/// ```
#[derive(Module, Debug)]
pub struct ActorCritic<B: Backend> {
    pub(crate) shared: Option<Mlp<B>>,
    pub(crate) dual: Option<ParallelMlp<B>>,
    pub(crate) policy_head: Linear<B>,
    /// `[last, 1]` for a scalar critic, `[last, N]` for a quantile critic.
    pub(crate) value_head: Linear<B>,
    /// The second quantile critic's head (an `Option`, so that records written before it
    /// existed still load: a missing optional field reads as `None`).
    twin_value_head: Option<Linear<B>>,
    /// Observation normalization in front of the trunks (an `Option` for the same reason).
    obs_norm: Option<ObsNormalizer<B>>,
    #[module(skip)]
    n_quantiles: usize,
    #[module(skip)]
    critic_reduction: CriticReduction,
}

impl ActorCriticConfig {
    /// Build the network on `device`.
    ///
    /// Panics when `twin_critic` is set without quantiles (configs check this first).
    pub fn init<B: Backend>(&self, device: &B::Device) -> ActorCritic<B> {
        assert!(
            !self.twin_critic || self.n_quantiles > 0,
            "ActorCriticConfig: twin_critic needs n_quantiles > 0"
        );
        let mut rng = Rng::seed_from_u64(self.seed);
        let gain = self.ortho_init.then(|| self.activation.hidden_gain());
        let last = self.hidden.last().copied().unwrap_or(self.obs_dim);
        let (shared, dual) = if self.shared_trunk || self.hidden.is_empty() {
            (
                Some(Mlp::new(
                    self.obs_dim,
                    &self.hidden,
                    self.activation,
                    gain,
                    &mut rng,
                    device,
                )),
                None,
            )
        } else {
            let g = gain.unwrap_or(1.0);
            // Policy trunk, critic trunk, and the twin critic's trunk when there is one.
            let trunks = if self.twin_critic { 3 } else { 2 };
            (
                None,
                Some(ParallelMlp::new(
                    trunks,
                    self.obs_dim,
                    &self.hidden,
                    self.activation,
                    g,
                    &mut rng,
                    device,
                )),
            )
        };
        let (pg, vg) = if self.ortho_init {
            (0.01, 1.0)
        } else {
            (1.0, 1.0)
        };
        let policy_head = linear_orthogonal(last, self.n_actions, pg, &mut rng, device);
        let width = self.n_quantiles.max(1);
        let value_head = linear_orthogonal(last, width, vg, &mut rng, device);
        let twin_value_head = self
            .twin_critic
            .then(|| linear_orthogonal(last, width, vg, &mut rng, device));
        ActorCritic {
            shared,
            dual,
            policy_head,
            value_head,
            twin_value_head,
            obs_norm: self
                .normalize_obs
                .then(|| ObsNormalizer::new(self.obs_dim, self.clip_obs, device)),
            n_quantiles: self.n_quantiles,
            critic_reduction: self.critic_reduction,
        }
    }
}

/// A linear layer applied to a `[k, n, d_in]` batch with a broadcast matmul.
fn apply_linear<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let y = x.matmul(layer.weight.val().unsqueeze::<3>());
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze::<3>(),
        None => y,
    }
}

impl<B: Backend> ActorCritic<B> {
    /// # Shapes
    /// - `obs`: `[batch, obs_dim]`
    /// - output: logits `[batch, n_actions]`, values `[batch]`, and with a quantile critic
    ///   quantiles `[batch, n_critics, N]`
    pub fn forward(&self, obs: Tensor<B, 2>) -> ActorCriticOutput<B> {
        let [n, _] = obs.dims();
        let obs = normalize_opt(self.obs_norm.as_ref(), obs);
        if let Some(mlp) = &self.shared {
            let h = mlp.forward(obs);
            if self.n_quantiles == 0 {
                return ActorCriticOutput {
                    logits: self.policy_head.forward(h.clone()),
                    values: self.value_head.forward(h).reshape([n]),
                    quantiles: None,
                };
            }
            let mut critics = vec![self.value_head.forward(h.clone())];
            if let Some(twin) = &self.twin_value_head {
                critics.push(twin.forward(h.clone()));
            }
            return self.distributional_output(self.policy_head.forward(h), critics);
        }
        // Dual trunk: h is [K, n, d] (policy trunk, value trunk, twin trunk). Each head is
        // applied to every trunk with a broadcast matmul and its own slice is kept from the
        // small output: slicing the narrow head output (and its backward, which scatters into
        // zeros) is far cheaper than slicing the wide trunk features, and the unused slices
        // receive a zero gradient, so each head still learns from its own trunk only.
        let h = self
            .dual
            .as_ref()
            .expect("actor-critic has a trunk")
            .forward(obs);
        let a = self.policy_head.weight.dims()[1];
        let logits = apply_linear(&self.policy_head, h.clone())
            .slice([0..1, 0..n, 0..a])
            .reshape([n, a]);
        if self.n_quantiles == 0 {
            let values = apply_linear(&self.value_head, h)
                .slice([1..2, 0..n, 0..1])
                .reshape([n]);
            return ActorCriticOutput {
                logits,
                values,
                quantiles: None,
            };
        }
        let q = self.n_quantiles;
        let mut critics = vec![
            apply_linear(&self.value_head, h.clone())
                .slice([1..2, 0..n, 0..q])
                .reshape([n, q]),
        ];
        if let Some(twin) = &self.twin_value_head {
            critics.push(
                apply_linear(twin, h)
                    .slice([2..3, 0..n, 0..q])
                    .reshape([n, q]),
            );
        }
        self.distributional_output(logits, critics)
    }

    fn distributional_output(
        &self,
        logits: Tensor<B, 2>,
        critics: Vec<Tensor<B, 2>>,
    ) -> ActorCriticOutput<B> {
        let (values, quantiles) = combine_quantile_critics(critics, self.critic_reduction);
        ActorCriticOutput {
            logits,
            values,
            quantiles: Some(quantiles),
        }
    }

    /// Only the state values (cheaper when the policy is not needed).
    ///
    /// # Shapes
    /// - `obs`: `[batch, obs_dim]`
    /// - output: `[batch]`
    pub fn values(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        self.forward(obs).values
    }

    /// Quantiles of the critic's return distribution (0: a scalar critic).
    pub fn n_quantiles(&self) -> usize {
        self.n_quantiles
    }

    /// The observation normalizer, when the network has one.
    pub fn obs_normalizer(&self) -> Option<&ObsNormalizer<B>> {
        self.obs_norm.as_ref()
    }

    /// The same network with new observation statistics (no-op without a normalizer).
    ///
    /// # Panics
    /// When the lengths differ from the observation width.
    pub fn with_obs_stats(mut self, mean: &[f32], var: &[f32]) -> Self {
        self.obs_norm = self.obs_norm.map(|n| n.with_stats(mean, var));
        self
    }

    /// Number of critics (2 with a twin quantile critic).
    pub fn n_critics(&self) -> usize {
        1 + self.twin_value_head.is_some() as usize
    }

    /// How twin critics are combined.
    pub fn critic_reduction(&self) -> CriticReduction {
        self.critic_reduction
    }

    /// Parameter ids of the value head and the twin critic's head, if any (for a value
    /// learning-rate multiplier). The dual trunk's weights hold every trunk in one tensor,
    /// so the critic trunk is not in the group.
    pub fn value_head_param_ids(&self) -> Vec<ParamId> {
        let mut ids = Vec::new();
        for head in std::iter::once(&self.value_head).chain(&self.twin_value_head) {
            ids.push(head.weight.id);
            if let Some(b) = &head.bias {
                ids.push(b.id);
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    #[test]
    fn dual_trunk_equals_two_separate_mlps() {
        // The batched dual trunk must compute exactly what two plain MLPs with the same
        // weights compute.
        let dev = Default::default();
        let cfg = ActorCriticConfig::new(4, 3).with_seed(5);
        let net = cfg.init::<B>(&dev);
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(
                (0..20).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(),
                [5, 4],
            ),
            &dev,
        );
        let out = net.forward(x.clone());
        let dual = net.dual.as_ref().unwrap();
        let w0: Vec<f32> = dual.weights[0].val().into_data().to_vec().unwrap();
        let w1: Vec<f32> = dual.weights[1].val().into_data().to_vec().unwrap();
        let xs: Vec<f32> = x.into_data().to_vec().unwrap();
        let act = |v: f32| v.tanh();
        for trunk in 0..2 {
            for r in 0..5 {
                let h0: Vec<f32> = (0..64)
                    .map(|o| {
                        act((0..4)
                            .map(|i| xs[r * 4 + i] * w0[trunk * 256 + i * 64 + o])
                            .sum())
                    })
                    .collect();
                let h1: Vec<f32> = (0..64)
                    .map(|o| act((0..64).map(|i| h0[i] * w1[trunk * 4096 + i * 64 + o]).sum()))
                    .collect();
                let head = if trunk == 0 {
                    &net.policy_head
                } else {
                    &net.value_head
                };
                let hw: Vec<f32> = head.weight.val().into_data().to_vec().unwrap();
                let dout = head.weight.dims()[1];
                let got: Vec<f32> = if trunk == 0 {
                    out.logits
                        .clone()
                        .slice([r..r + 1, 0..3])
                        .into_data()
                        .to_vec()
                        .unwrap()
                } else {
                    out.values
                        .clone()
                        .slice(r..r + 1)
                        .into_data()
                        .to_vec()
                        .unwrap()
                };
                for o in 0..dout {
                    let want: f32 = (0..64).map(|i| h1[i] * hw[i * dout + o]).sum();
                    assert!(
                        (got[o] - want).abs() < 1e-5,
                        "trunk {trunk} row {r}: {} vs {want}",
                        got[o]
                    );
                }
            }
        }
    }

    #[test]
    fn head_gradients_come_from_their_own_trunk() {
        type AB = burn::backend::Autodiff<NdArray<f32>>;
        let dev = Default::default();
        let net = ActorCriticConfig::new(4, 3).with_seed(2).init::<AB>(&dev);
        let x = Tensor::<AB, 2>::from_data(
            TensorData::new(
                (0..20).map(|i| (i as f32 * 0.7).cos()).collect::<Vec<_>>(),
                [5, 4],
            ),
            &dev,
        );
        let out = net.forward(x.clone());
        let g = (out.logits.powi_scalar(2).sum() + out.values.powi_scalar(2).sum()).backward();
        // Reference: slice the trunks first, then apply plain linear heads.
        let h = net.dual.as_ref().unwrap().forward(x);
        let pi = h.clone().slice([0..1, 0..5, 0..64]).reshape([5, 64]);
        let vf = h.slice([1..2, 0..5, 0..64]).reshape([5, 64]);
        let gr = (net.policy_head.forward(pi).powi_scalar(2).sum()
            + net.value_head.forward(vf).powi_scalar(2).sum())
        .backward();
        for p in [&net.policy_head.weight, &net.value_head.weight] {
            let a: Vec<f32> = p.val().grad(&g).unwrap().into_data().to_vec().unwrap();
            let b: Vec<f32> = p.val().grad(&gr).unwrap().into_data().to_vec().unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn same_seed_same_weights_and_small_policy_head() {
        let dev = Default::default();
        let a = ActorCriticConfig::new(4, 2).with_seed(1).init::<B>(&dev);
        let b = ActorCriticConfig::new(4, 2).with_seed(1).init::<B>(&dev);
        let x = Tensor::<B, 2>::ones([2, 4], &dev);
        let (oa, ob) = (a.forward(x.clone()), b.forward(x));
        assert_eq!(oa.logits.to_data(), ob.logits.to_data());
        // Policy head gain 0.01: the initial policy is nearly uniform.
        let l: Vec<f32> = oa.logits.into_data().to_vec().unwrap();
        assert!(l.iter().all(|v| v.abs() < 0.1), "{l:?}");
    }

    fn t3(v: Vec<f32>, shape: [usize; 3]) -> Tensor<B, 3> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    #[test]
    fn twin_reductions_are_pessimistic_as_documented() {
        // Two samples, two critics, three quantiles.
        let q = t3(
            vec![
                // sample 0: critic 0 mean 2, critic 1 mean 1 (unsorted)
                1.0, 2.0, 3.0, /**/ 3.0, -1.0, 1.0, //
                // sample 1: critic 0 mean 0, critic 1 mean 5
                -1.0, 0.0, 1.0, /**/ 4.0, 5.0, 6.0,
            ],
            [2, 2, 3],
        );
        let mom: Vec<f32> = reduce_critics(q.clone(), CriticReduction::MinOfMeans)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(mom, vec![3.0, -1.0, 1.0, -1.0, 0.0, 1.0]);
        let emin: Vec<f32> = reduce_critics(q, CriticReduction::ElementwiseMin)
            .into_data()
            .to_vec()
            .unwrap();
        // Sorted critics of sample 0: [1, 2, 3] and [-1, 1, 3] -> [-1, 1, 3].
        assert_eq!(emin, vec![-1.0, 1.0, 3.0, -1.0, 0.0, 1.0]);
        // One critic passes through.
        let one = t3(vec![3.0, 1.0], [1, 1, 2]);
        let r: Vec<f32> = reduce_critics(one, CriticReduction::ElementwiseMin)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(r, vec![3.0, 1.0]);
    }

    #[test]
    fn quantile_critics_shapes_and_values_are_the_reduced_mean() {
        let dev = Default::default();
        for shared in [false, true] {
            let net = ActorCriticConfig::new(4, 3)
                .with_shared_trunk(shared)
                .with_n_quantiles(8)
                .with_twin_critic(true)
                .with_critic_reduction(CriticReduction::ElementwiseMin)
                .init::<B>(&dev);
            assert_eq!((net.n_quantiles(), net.n_critics()), (8, 2));
            assert_eq!(net.value_head_param_ids().len(), 4);
            let out = net.forward(Tensor::ones([5, 4], &dev));
            let q = out.quantiles.unwrap();
            assert_eq!(q.dims(), [5, 2, 8]);
            let want: Vec<f32> = reduce_critics(q, CriticReduction::ElementwiseMin)
                .mean_dim(1)
                .reshape([5])
                .into_data()
                .to_vec()
                .unwrap();
            let got: Vec<f32> = out.values.into_data().to_vec().unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn the_scalar_critic_is_unchanged_by_the_quantile_options() {
        // Same seed: the scalar network draws the same weights whatever the (unused) options.
        let dev = Default::default();
        let a = ActorCriticConfig::new(4, 2).with_seed(3).init::<B>(&dev);
        let b = ActorCriticConfig::new(4, 2)
            .with_seed(3)
            .with_critic_reduction(CriticReduction::ElementwiseMin)
            .init::<B>(&dev);
        let x = Tensor::<B, 2>::ones([2, 4], &dev);
        let (oa, ob) = (a.forward(x.clone()), b.forward(x));
        assert_eq!(oa.values.to_data(), ob.values.to_data());
        assert!(oa.quantiles.is_none());
    }

    #[test]
    fn shared_trunk_shapes() {
        let dev = Default::default();
        let net = ActorCriticConfig::new(6, 5)
            .with_shared_trunk(true)
            .with_hidden(vec![32])
            .init::<B>(&dev);
        let out = net.forward(Tensor::zeros([7, 6], &dev));
        assert_eq!(out.logits.dims(), [7, 5]);
        assert_eq!(out.values.dims(), [7]);
    }
}
