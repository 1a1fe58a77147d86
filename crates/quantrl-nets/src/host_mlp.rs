//! An MLP [`ActorCritic`] forward and backward on the host, for training and acting on a CPU.
//!
//! Burn's CPU backend spends a few microseconds of dispatch, allocation and autodiff
//! bookkeeping on every tensor operation, and a PPO minibatch of a small network is hundreds
//! of them (see `docs/BENCHMARKS.md`). [`HostActorCritic`] is a snapshot of a feed-forward
//! actor-critic's weights in plain `f32` arrays with a hand-derived backward pass: each layer
//! is one matrix product (`ndarray`, i.e. `matrixmultiply`'s SIMD kernels) and one fused
//! element-wise loop ([`crate::fastmath`]), so a minibatch costs about what its arithmetic
//! costs.
//!
//! It computes exactly the function of [`ActorCritic::forward`]: the observation normalizer,
//! the shared or dual trunk, the policy head and a scalar value head, with the same
//! activation formulations (the fast `tanh` of [`crate::activation`]; `tanh_native` uses it
//! too, which agrees with Burn's kernel to float32 rounding). Quantile critics are not
//! covered: [`HostActorCritic::from_actor_critic`] returns `None` for them and callers keep
//! Burn's graph. [`HostActorCritic::backward`] returns the gradient of every trained parameter
//! under its [`ParamId`], in the parameter's own shape, ready for Burn's optimizers; the tests
//! check values and gradients against Burn's autodiff.
//!
//! Weights are copied when the snapshot is taken: take a new one after every optimizer step.

use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};
use ndarray::{Array2, ArrayView2, Axis};

use crate::activation::Activation;
use crate::fastmath;
use crate::gemm::{matmul_acc, mm};
use crate::obs_norm::OBS_NORM_EPSILON;
use crate::{ActorCritic, HostParamGrad};

/// One layer of every trunk: per trunk a `[d_in, d_out]` weight and a `d_out` bias.
#[derive(Debug, Clone)]
struct HostLayer {
    w: Vec<Array2<f32>>,
    b: Vec<Vec<f32>>,
    w_id: ParamId,
    b_id: Option<ParamId>,
    /// Whether the Burn parameters are the `[K, d_in, d_out]` / `[K, 1, d_out]` tensors of a
    /// `ParallelMlp` (otherwise one `Linear`).
    parallel: bool,
}

/// A linear head.
#[derive(Debug, Clone)]
struct HostHead {
    w: Array2<f32>,
    b: Vec<f32>,
    w_id: ParamId,
    b_id: Option<ParamId>,
}

/// A snapshot of a feed-forward, scalar-critic [`ActorCritic`] (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HostActorCritic {
    /// `(mean, 1 / sqrt(var + ε), clip)` of the observation normalizer.
    norm: Option<(Vec<f32>, Vec<f32>, f32)>,
    layers: Vec<HostLayer>,
    /// Trunks: 1 (shared) or 2 (policy, value).
    trunks: usize,
    policy_head: HostHead,
    value_head: HostHead,
    activation: Activation,
    obs_dim: usize,
    n_actions: usize,
}

/// What [`HostActorCritic::forward`] keeps for the backward pass, and its outputs.
#[derive(Debug, Clone)]
pub struct HostMlpTape {
    /// Action logits, `[n, n_actions]` row-major.
    pub logits: Vec<f32>,
    /// State values, `[n]`.
    pub values: Vec<f32>,
    /// The (normalized) input, `[n, obs_dim]`.
    x: Array2<f32>,
    trunks: Vec<TrunkTape>,
}

/// One trunk's forward pass.
#[derive(Debug, Clone)]
struct TrunkTape {
    /// Each layer's output after the activation, `[n, d_out]`.
    outs: Vec<Array2<f32>>,
    /// Each layer's pre-activation, kept only where the derivative needs it (SiLU).
    pre: Vec<Array2<f32>>,
}

/// A tensor's values on the host, fast also for a tensor held elsewhere (a parameter, a
/// gradient in Burn's gradient store): burn-ndarray hands over an
/// array's buffer without copying only when no one else holds it, and otherwise collects it
/// element by element through a dynamic-rank iterator, which for a parameter (shared with
/// its module) cost more than the whole host forward pass. `mul_scalar(1.0)` (bit-exact)
/// makes a fresh array in one SIMD pass, whose buffer is then handed over.
pub fn param_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.mul_scalar(1.0)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("float parameters")
}

fn host_matrix<B: Backend>(t: Tensor<B, 2>) -> Array2<f32> {
    let [r, c] = t.dims();
    Array2::from_shape_vec((r, c), param_values(t)).expect("weight shape")
}

fn head<B: Backend>(l: &Linear<B>) -> HostHead {
    let w = host_matrix(l.weight.val());
    let d_out = w.ncols();
    HostHead {
        w,
        b: l.bias
            .as_ref()
            .map_or_else(|| vec![0.0; d_out], |b| param_values(b.val())),
        w_id: l.weight.id,
        b_id: l.bias.as_ref().map(|b| b.id),
    }
}

fn parallel_layer<B: Backend>(w: &Param<Tensor<B, 3>>, b: &Param<Tensor<B, 3>>) -> HostLayer {
    let [_, d_in, d_out] = w.dims();
    let wv = param_values(w.val());
    let bv = param_values(b.val());
    HostLayer {
        w: wv
            .chunks_exact(d_in * d_out)
            .map(|c| Array2::from_shape_vec((d_in, d_out), c.to_vec()).expect("weight shape"))
            .collect(),
        b: bv.chunks_exact(d_out).map(<[f32]>::to_vec).collect(),
        w_id: w.id,
        b_id: Some(b.id),
        parallel: true,
    }
}

/// `out = x · w + b` (bias broadcast over rows).
fn affine(x: ArrayView2<'_, f32>, w: &Array2<f32>, b: &[f32]) -> Array2<f32> {
    let mut out = Array2::zeros((x.nrows(), w.ncols()));
    for row in out
        .as_slice_mut()
        .expect("a new array is row-major")
        .chunks_exact_mut(b.len())
    {
        row.copy_from_slice(b);
    }
    matmul_acc(x, w.view(), &mut out);
    out
}

/// Column sums of `[n, d]`.
fn col_sums(g: &Array2<f32>) -> Vec<f32> {
    g.sum_axis(Axis(0)).to_vec()
}

impl HostActorCritic {
    /// A snapshot of `net`'s weights, or `None` when the network has a quantile critic (not
    /// covered here, see the [module docs](self)).
    pub fn from_actor_critic<B: Backend>(net: &ActorCritic<B>) -> Option<Self> {
        if net.n_quantiles() > 0 {
            return None;
        }
        let (layers, trunks, activation) = if let Some(mlp) = &net.shared {
            let layers: Vec<HostLayer> = mlp
                .layers
                .iter()
                .map(|l| {
                    let h = head(l);
                    HostLayer {
                        w: vec![h.w],
                        b: vec![h.b],
                        w_id: h.w_id,
                        b_id: h.b_id,
                        parallel: false,
                    }
                })
                .collect();
            (layers, 1, mlp.activation)
        } else {
            let dual = net.dual.as_ref().expect("actor-critic has a trunk");
            let layers: Vec<HostLayer> = dual
                .weights
                .iter()
                .zip(&dual.biases)
                .map(|(w, b)| parallel_layer(w, b))
                .collect();
            (layers, 2, dual.activation)
        };
        let policy_head = head(&net.policy_head);
        let norm = net.obs_normalizer().map(|n| {
            let (mean, var) = n.stats();
            let inv = var
                .iter()
                .map(|&v| (v + OBS_NORM_EPSILON as f32).sqrt().recip())
                .collect();
            (mean, inv, n.clip())
        });
        let obs_dim = match layers.first() {
            Some(l) => l.w[0].nrows(),
            None => policy_head.w.nrows(),
        };
        Some(Self {
            norm,
            layers,
            trunks,
            obs_dim,
            n_actions: policy_head.w.ncols(),
            policy_head,
            value_head: head(&net.value_head),
            activation,
        })
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    fn activate(&self, z: &mut Array2<f32>) -> Option<Array2<f32>> {
        let s = z.as_slice_mut().expect("standard layout");
        match self.activation {
            Activation::Tanh | Activation::TanhNative => {
                fastmath::tanh_in_place(s);
                None
            }
            Activation::Relu => {
                for v in s {
                    *v = v.max(0.0);
                }
                None
            }
            Activation::Silu => {
                let pre = z.clone();
                for v in z.as_slice_mut().expect("standard layout") {
                    *v *= fastmath::sigmoid(*v);
                }
                Some(pre)
            }
        }
    }

    /// `g ⊙ act'(z)` in place, from the layer's output `y` (and pre-activation for SiLU).
    fn activation_backward(&self, g: &mut Array2<f32>, y: &Array2<f32>, pre: Option<&Array2<f32>>) {
        let gs = g.as_slice_mut().expect("standard layout");
        let ys = y.as_slice().expect("standard layout");
        match self.activation {
            Activation::Tanh | Activation::TanhNative => {
                for (g, &y) in gs.iter_mut().zip(ys) {
                    *g *= 1.0 - y * y;
                }
            }
            Activation::Relu => {
                for (g, &y) in gs.iter_mut().zip(ys) {
                    if y <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            Activation::Silu => {
                let zs = pre
                    .expect("SiLU keeps its input")
                    .as_slice()
                    .expect("layout");
                for (g, &z) in gs.iter_mut().zip(zs) {
                    let s = fastmath::sigmoid(z);
                    *g *= s * (1.0 + z * (1.0 - s));
                }
            }
        }
    }

    /// One trunk's forward pass from the (normalized) input.
    fn trunk_forward(&self, t: usize, x: &Array2<f32>) -> TrunkTape {
        let mut tape = TrunkTape {
            outs: Vec::with_capacity(self.layers.len()),
            pre: Vec::new(),
        };
        for layer in &self.layers {
            let input = tape.outs.last().unwrap_or(x).view();
            let mut z = affine(input, &layer.w[t], &layer.b[t]);
            if let Some(p) = self.activate(&mut z) {
                tape.pre.push(p);
            }
            tape.outs.push(z);
        }
        tape
    }

    /// Logits and values of `n` observations (`[n, obs_dim]` row-major), with the tape for
    /// [`backward`](Self::backward).
    ///
    /// # Panics
    /// When `obs.len() != n * obs_dim`.
    pub fn forward(&self, obs: &[f32], n: usize) -> HostMlpTape {
        assert_eq!(obs.len(), n * self.obs_dim, "observations are [n, obs_dim]");
        let mut x = Array2::from_shape_vec((n, self.obs_dim), obs.to_vec()).expect("obs shape");
        if let Some((mean, inv, clip)) = &self.norm {
            for mut row in x.rows_mut() {
                for ((v, &m), &s) in row.iter_mut().zip(mean).zip(inv) {
                    *v = ((*v - m) * s).clamp(-clip, *clip);
                }
            }
        }
        // One thread: the two trunks on two threads (`rayon::join`) measured slower at
        // batch 64 and 256; waking the second thread cost more than it saved.
        let trunks: Vec<TrunkTape> = (0..self.trunks)
            .map(|t| self.trunk_forward(t, &x))
            .collect();
        let vt = self.trunks - 1;
        let top = |t: usize| trunks[t].outs.last().unwrap_or(&x).view();
        let logits = affine(top(0), &self.policy_head.w, &self.policy_head.b);
        let values = affine(top(vt), &self.value_head.w, &self.value_head.b);
        HostMlpTape {
            logits: logits.into_raw_vec_and_offset().0,
            values: values.into_raw_vec_and_offset().0,
            x,
            trunks,
        }
    }

    /// One trunk's backward pass from the gradient at its output: `(dW, db)` per layer.
    fn trunk_backward(
        &self,
        t: usize,
        tape: &HostMlpTape,
        mut g: Array2<f32>,
    ) -> Vec<(Array2<f32>, Vec<f32>)> {
        let trunk = &tape.trunks[t];
        let mut grads = Vec::with_capacity(self.layers.len());
        for l in (0..self.layers.len()).rev() {
            self.activation_backward(&mut g, &trunk.outs[l], trunk.pre.get(l));
            let input = if l == 0 { &tape.x } else { &trunk.outs[l - 1] };
            let dw = mm(input.t(), g.view());
            let db = col_sums(&g);
            if l > 0 {
                g = mm(g.view(), self.layers[l].w[t].t());
            }
            grads.push((dw, db));
        }
        grads.reverse();
        grads
    }

    /// Gradients of every trained parameter given the gradients of the loss with respect to
    /// the logits (`[n, n_actions]`) and the values (`[n]`) of `tape`'s forward pass.
    ///
    /// # Panics
    /// When the lengths do not match the tape's batch.
    pub fn backward(
        &self,
        tape: &HostMlpTape,
        d_logits: &[f32],
        d_values: &[f32],
    ) -> Vec<HostParamGrad> {
        let n = tape.x.nrows();
        let dl = ArrayView2::from_shape((n, self.n_actions), d_logits).expect("d_logits shape");
        let dv = ArrayView2::from_shape((n, 1), d_values).expect("d_values shape");
        let vt = self.trunks - 1;
        let top = |t: usize| tape.trunks[t].outs.last().unwrap_or(&tape.x).view();
        let mut grads = Vec::new();
        for (h, input, d) in [
            (&self.policy_head, top(0), dl),
            (&self.value_head, top(vt), dv),
        ] {
            let dw = mm(input.t(), d);
            grads.push(HostParamGrad {
                id: h.w_id,
                shape: vec![dw.nrows(), dw.ncols()],
                values: dw.into_raw_vec_and_offset().0,
            });
            if let Some(id) = h.b_id {
                let db = d.sum_axis(Axis(0)).to_vec();
                grads.push(HostParamGrad {
                    id,
                    shape: vec![db.len()],
                    values: db,
                });
            }
        }
        if self.layers.is_empty() {
            return grads;
        }
        // The gradient at each trunk's output, then each trunk's layers.
        let pg = mm(dl, self.policy_head.w.t());
        let vg = mm(dv, self.value_head.w.t());
        let per_trunk = if self.trunks == 1 {
            vec![self.trunk_backward(0, tape, pg + vg)]
        } else {
            vec![
                self.trunk_backward(0, tape, pg),
                self.trunk_backward(1, tape, vg),
            ]
        };
        let k = self.trunks;
        for (l, layer) in self.layers.iter().enumerate() {
            let (d_in, d_out) = per_trunk[0][l].0.dim();
            let mut w = Vec::with_capacity(k * d_in * d_out);
            let mut b = Vec::with_capacity(k * d_out);
            for trunk in &per_trunk {
                let (dw, db) = &trunk[l];
                w.extend(dw.iter());
                b.extend(db);
            }
            let (w_shape, b_shape) = if layer.parallel {
                (vec![k, d_in, d_out], vec![k, 1, d_out])
            } else {
                (vec![d_in, d_out], vec![d_out])
            };
            grads.push(HostParamGrad {
                id: layer.w_id,
                values: w,
                shape: w_shape,
            });
            if let Some(id) = layer.b_id {
                grads.push(HostParamGrad {
                    id,
                    values: b,
                    shape: b_shape,
                });
            }
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActorCriticConfig;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::Module;
    use burn::tensor::TensorData;

    type AB = Autodiff<NdArray<f32>>;

    fn obs(n: usize, d: usize) -> Vec<f32> {
        (0..n * d)
            .map(|i| ((i as f32) * 0.731).sin() * 2.0)
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: host {x} vs burn {y}"
            );
        }
    }

    /// Forward values and every parameter gradient of a weighted sum of logits and values
    /// against Burn's autodiff.
    fn check(cfg: ActorCriticConfig) {
        for n in [1, 7, 70] {
            check_rows(&cfg, n);
        }
    }

    fn check_rows(cfg: &ActorCriticConfig, n: usize) {
        let dev = Default::default();
        let (d, a) = (cfg.obs_dim, cfg.n_actions);
        let mut net = cfg.init::<AB>(&dev);
        if cfg.normalize_obs {
            let mean: Vec<f32> = (0..d).map(|i| 0.1 * i as f32).collect();
            let var: Vec<f32> = (0..d).map(|i| 0.5 + i as f32).collect();
            net = net.with_obs_stats(&mean, &var);
        }
        let host = HostActorCritic::from_actor_critic(&net).expect("scalar critic");
        let x = obs(n, d);
        let tape = host.forward(&x, n);
        let out = net.forward(Tensor::from_data(TensorData::new(x.clone(), [n, d]), &dev));
        close(
            &tape.logits,
            &param_values(out.logits.clone()),
            2e-5,
            "logits",
        );
        close(
            &tape.values,
            &param_values(out.values.clone()),
            2e-5,
            "values",
        );
        // Loss = Σ wl ⊙ logits + Σ wv ⊙ values with fixed weights.
        let wl: Vec<f32> = (0..n * a).map(|i| ((i as f32) * 1.3).cos()).collect();
        let wv: Vec<f32> = (0..n).map(|i| 0.5 - (i as f32) * 0.2).collect();
        let loss = (out.logits * Tensor::from_data(TensorData::new(wl.clone(), [n, a]), &dev))
            .sum()
            + (out.values * Tensor::from_data(TensorData::new(wv.clone(), [n]), &dev)).sum();
        let grads = loss.backward();
        let host_grads = host.backward(&tape, &wl, &wv);
        // Every trainable parameter has a host gradient; compare each.
        struct Collect<'a> {
            grads: &'a <AB as burn::tensor::backend::AutodiffBackend>::Gradients,
            host: &'a [HostParamGrad],
            seen: usize,
        }
        impl burn::module::ModuleVisitor<AB> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
                let Some(g) = param.val().grad(self.grads) else {
                    return;
                };
                let h = self
                    .host
                    .iter()
                    .find(|h| h.id == param.id)
                    .unwrap_or_else(|| panic!("no host gradient for {:?}", param.dims()));
                assert_eq!(h.shape, param.dims().to_vec(), "shape");
                close(&h.values, &param_values(g), 5e-5, "gradient");
                self.seen += 1;
            }
        }
        let mut c = Collect {
            grads: &grads,
            host: &host_grads,
            seen: 0,
        };
        net.visit(&mut c);
        assert_eq!(
            c.seen,
            host_grads.len(),
            "host gradients of untrained parameters"
        );
    }

    #[test]
    fn matches_burn_for_every_trunk_and_activation() {
        for activation in [
            Activation::Tanh,
            Activation::TanhNative,
            Activation::Relu,
            Activation::Silu,
        ] {
            for shared in [false, true] {
                for normalize in [false, true] {
                    check(
                        ActorCriticConfig::new(5, 3)
                            .with_hidden(vec![16, 8])
                            .with_activation(activation)
                            .with_shared_trunk(shared)
                            .with_normalize_obs(normalize)
                            .with_clip_obs(1.5)
                            .with_seed(3),
                    );
                }
            }
        }
    }

    #[test]
    fn matches_burn_with_wide_layers_and_many_actions() {
        // Widths above `SMALL`: the packed GEMM path; 12 actions: a wide policy head.
        for shared in [false, true] {
            check(
                ActorCriticConfig::new(12, 12)
                    .with_hidden(vec![24, 16])
                    .with_shared_trunk(shared)
                    .with_seed(4),
            );
        }
    }

    #[test]
    fn matches_burn_without_hidden_layers_and_with_one() {
        check(
            ActorCriticConfig::new(4, 2)
                .with_hidden(vec![])
                .with_seed(1),
        );
        check(
            ActorCriticConfig::new(4, 2)
                .with_hidden(vec![32])
                .with_seed(2),
        );
    }

    #[test]
    fn quantile_critics_are_not_covered() {
        let net = ActorCriticConfig::new(4, 2)
            .with_n_quantiles(8)
            .init::<NdArray<f32>>(&Default::default());
        assert!(HostActorCritic::from_actor_critic(&net).is_none());
    }
}
