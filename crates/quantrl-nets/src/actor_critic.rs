//! Actor-critic networks for discrete actions: a categorical policy head and a value head
//! over a shared trunk or separate (dual) policy and value trunks.

use burn::config::Config;
use burn::module::{Module, ParamId};
use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};
use quantrl_core::Rng;

use crate::{Activation, Mlp, ParallelMlp, mlp::linear_orthogonal};

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
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct ActorCriticOutput<B: Backend> {
    /// Unnormalized action log-probabilities, `[batch, n_actions]`.
    pub logits: Tensor<B, 2>,
    /// State values, `[batch]`.
    pub values: Tensor<B, 1>,
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
    shared: Option<Mlp<B>>,
    dual: Option<ParallelMlp<B>>,
    policy_head: Linear<B>,
    value_head: Linear<B>,
}

impl ActorCriticConfig {
    /// Build the network on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ActorCritic<B> {
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
            (
                None,
                Some(ParallelMlp::new(
                    2,
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
        let value_head = linear_orthogonal(last, 1, vg, &mut rng, device);
        ActorCritic {
            shared,
            dual,
            policy_head,
            value_head,
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
    /// - output: logits `[batch, n_actions]`, values `[batch]`
    pub fn forward(&self, obs: Tensor<B, 2>) -> ActorCriticOutput<B> {
        let [n, _] = obs.dims();
        if let Some(mlp) = &self.shared {
            let h = mlp.forward(obs);
            return ActorCriticOutput {
                logits: self.policy_head.forward(h.clone()),
                values: self.value_head.forward(h).reshape([n]),
            };
        }
        // Dual trunk: h is [2, n, d] (policy trunk, value trunk). Each head is applied to both
        // trunks with a broadcast matmul and the wanted half is sliced from the small output:
        // slicing the narrow head output (and its backward, which scatters into zeros) is far
        // cheaper than slicing the wide trunk features, and the unused half receives a zero
        // gradient, so each head still learns from its own trunk only.
        let h = self
            .dual
            .as_ref()
            .expect("actor-critic has a trunk")
            .forward(obs);
        let a = self.policy_head.weight.dims()[1];
        let logits = apply_linear(&self.policy_head, h.clone())
            .slice([0..1, 0..n, 0..a])
            .reshape([n, a]);
        let values = apply_linear(&self.value_head, h)
            .slice([1..2, 0..n, 0..1])
            .reshape([n]);
        ActorCriticOutput { logits, values }
    }

    /// Only the state values (cheaper when the policy is not needed).
    ///
    /// # Shapes
    /// - `obs`: `[batch, obs_dim]`
    /// - output: `[batch]`
    pub fn values(&self, obs: Tensor<B, 2>) -> Tensor<B, 1> {
        self.forward(obs).values
    }

    /// Parameter ids of the value head (for a value learning-rate multiplier).
    pub fn value_head_param_ids(&self) -> Vec<ParamId> {
        let mut ids = vec![self.value_head.weight.id];
        if let Some(b) = &self.value_head.bias {
            ids.push(b.id);
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
