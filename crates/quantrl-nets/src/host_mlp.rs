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
//! Weights are copied when the snapshot is taken: take a new one after a Burn optimizer's step,
//! or step the snapshot itself ([`HostActorCritic::params`], an optimizer on the host,
//! [`HostActorCritic::set_params`]) and write it back with [`load_host_params`]. A training
//! loop keeps one [`HostMlpTape`] and one gradient list and passes them to
//! [`HostActorCritic::forward_into`] and [`HostActorCritic::backward_into`], which reuse
//! their buffers.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use ndarray::{Array2, ArrayRef2, ArrayView2, ArrayViewMut2};

use crate::activation::Activation;
use crate::fastmath;
use crate::gemm::matmul_acc;
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

/// What [`HostActorCritic::forward`] keeps for the backward pass, and its outputs. Keep one
/// and pass it to [`HostActorCritic::forward_into`] to reuse its buffers.
#[derive(Debug, Clone, Default)]
pub struct HostMlpTape {
    /// Action logits, `[n, n_actions]` row-major.
    pub logits: Vec<f32>,
    /// State values, `[n]`.
    pub values: Vec<f32>,
    /// The (normalized) input, `[n, obs_dim]`.
    x: Array2<f32>,
    trunks: Vec<TrunkTape>,
    /// The backward pass's per-trunk gradients at a layer's output and input.
    scratch: Vec<[Vec<f32>; 2]>,
}

/// One trunk's forward pass.
#[derive(Debug, Clone, Default)]
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

/// `module` with the parameters listed in `params` (by id) set to their values; the others,
/// and every parameter's id and gradient requirement, unchanged. The way back from a host
/// snapshot stepped in place ([`HostActorCritic::set_params`]) to the Burn module.
///
/// # Panics
/// When a listed parameter's shape is not the module's.
pub fn load_host_params<B: Backend, M: Module<B>>(module: M, params: &[HostParamGrad]) -> M {
    struct Load<'a> {
        by_id: HashMap<ParamId, &'a HostParamGrad>,
    }
    impl<B: Backend> ModuleMapper<B> for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let Some(p) = self.by_id.get(&param.id) else {
                return param;
            };
            let (id, tensor, mapper) = param.consume();
            let shape: [usize; D] = p.shape.clone().try_into().expect("parameter rank");
            assert_eq!(shape, tensor.dims(), "parameter shape");
            let mut t =
                Tensor::from_data(TensorData::new(p.values.clone(), shape), &tensor.device());
            if tensor.is_require_grad() {
                t = t.require_grad();
            }
            Param::from_mapped_value(id, t, mapper)
        }
    }
    module.map(&mut Load {
        by_id: params.iter().map(|p| (p.id, p)).collect(),
    })
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

/// `out = x · w + b` (bias broadcast over rows) into `out`, `[x.nrows(), w.ncols()]`.
fn affine_into(x: ArrayView2<'_, f32>, w: &Array2<f32>, b: &[f32], out: &mut ArrayRef2<f32>) {
    for row in out
        .as_slice_mut()
        .expect("row-major output")
        .chunks_exact_mut(b.len())
    {
        row.copy_from_slice(b);
    }
    matmul_acc(x, w.view(), out);
}

/// Column sums of row-major `[n, out.len()]` `g` into `out` (rows added in order).
fn col_sums_into(g: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for row in g.chunks_exact(out.len()) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// `a` as an `[rows, cols]` array, reallocated only when its shape changes.
fn ensure(a: &mut Array2<f32>, rows: usize, cols: usize) {
    if a.dim() != (rows, cols) {
        *a = Array2::zeros((rows, cols));
    }
}

/// The first `rows · cols` elements of `buf` (grown when short) as an `[rows, cols]` view.
fn view_of(buf: &mut Vec<f32>, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    if buf.len() < rows * cols {
        buf.resize(rows * cols, 0.0);
    }
    ArrayViewMut2::from_shape((rows, cols), &mut buf[..rows * cols]).expect("scratch shape")
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

    /// The trained parameters' values, in the order, ids and shapes of the gradients of
    /// [`backward`](Self::backward) (Burn's layout: `[K, d_in, d_out]` for a dual trunk's
    /// layer). With [`set_params`](Self::set_params), an optimizer can step the snapshot in
    /// place of the Burn module.
    pub fn params(&self) -> Vec<HostParamGrad> {
        let mut out = Vec::new();
        for h in [&self.policy_head, &self.value_head] {
            out.push(HostParamGrad {
                id: h.w_id,
                shape: vec![h.w.nrows(), h.w.ncols()],
                values: h.w.iter().copied().collect(),
            });
            if let Some(id) = h.b_id {
                out.push(HostParamGrad {
                    id,
                    shape: vec![h.b.len()],
                    values: h.b.clone(),
                });
            }
        }
        let k = self.trunks;
        for layer in &self.layers {
            let (d_in, d_out) = layer.w[0].dim();
            let (w_shape, b_shape) = if layer.parallel {
                (vec![k, d_in, d_out], vec![k, 1, d_out])
            } else {
                (vec![d_in, d_out], vec![d_out])
            };
            out.push(HostParamGrad {
                id: layer.w_id,
                shape: w_shape,
                values: layer.w.iter().flat_map(|w| w.iter().copied()).collect(),
            });
            if let Some(id) = layer.b_id {
                out.push(HostParamGrad {
                    id,
                    shape: b_shape,
                    values: layer.b.concat(),
                });
            }
        }
        out
    }

    /// Overwrite the weights with `params`, in the order and layout of
    /// [`params`](Self::params).
    ///
    /// # Panics
    /// When `params` is not that list (ids, order or lengths differ).
    pub fn set_params(&mut self, params: &[HostParamGrad]) {
        let mut it = params.iter();
        let mut next = |id: ParamId, len: usize| {
            let p = it.next().expect("one value per parameter");
            assert!(p.id == id && p.values.len() == len, "parameter list");
            &p.values
        };
        for h in [&mut self.policy_head, &mut self.value_head] {
            let w = next(h.w_id, h.w.len());
            h.w.as_slice_mut().expect("row-major").copy_from_slice(w);
            if let Some(id) = h.b_id {
                let len = h.b.len();
                h.b.copy_from_slice(next(id, len));
            }
        }
        for layer in &mut self.layers {
            let size = layer.w[0].len();
            let w = next(layer.w_id, size * layer.w.len());
            for (t, chunk) in layer.w.iter_mut().zip(w.chunks_exact(size)) {
                t.as_slice_mut().expect("row-major").copy_from_slice(chunk);
            }
            if let Some(id) = layer.b_id {
                let d_out = layer.b[0].len();
                let b = next(id, d_out * layer.b.len());
                for (t, chunk) in layer.b.iter_mut().zip(b.chunks_exact(d_out)) {
                    t.copy_from_slice(chunk);
                }
            }
        }
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// The activation in place (SiLU's input must have been kept by the caller).
    fn activate(&self, s: &mut [f32]) {
        match self.activation {
            Activation::Tanh | Activation::TanhNative => fastmath::tanh_in_place(s),
            Activation::Relu => {
                for v in s {
                    *v = v.max(0.0);
                }
            }
            Activation::Silu => {
                for v in s {
                    *v *= fastmath::sigmoid(*v);
                }
            }
        }
    }

    /// `g ⊙ act'(z)` in place, from the layer's output `y` (and pre-activation for SiLU).
    fn activation_backward(&self, gs: &mut [f32], ys: &[f32], pre: Option<&Array2<f32>>) {
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

    /// Logits and values of `n` observations (`[n, obs_dim]` row-major), with the tape for
    /// [`backward`](Self::backward).
    ///
    /// # Panics
    /// When `obs.len() != n * obs_dim`.
    pub fn forward(&self, obs: &[f32], n: usize) -> HostMlpTape {
        let mut tape = HostMlpTape::default();
        self.forward_into(obs, n, &mut tape);
        tape
    }

    /// [`forward`](Self::forward) into `tape`, reusing its buffers: a training loop that keeps
    /// one tape allocates nothing per minibatch once the shapes have been seen (which also
    /// keeps the C allocator from returning and re-faulting the same pages every minibatch).
    ///
    /// # Panics
    /// When `obs.len() != n * obs_dim`.
    pub fn forward_into(&self, obs: &[f32], n: usize, tape: &mut HostMlpTape) {
        assert_eq!(obs.len(), n * self.obs_dim, "observations are [n, obs_dim]");
        let HostMlpTape {
            logits,
            values,
            x,
            trunks,
            ..
        } = tape;
        ensure(x, n, self.obs_dim);
        x.as_slice_mut().expect("row-major").copy_from_slice(obs);
        if let Some((mean, inv, clip)) = &self.norm {
            for mut row in x.rows_mut() {
                for ((v, &m), &s) in row.iter_mut().zip(mean).zip(inv) {
                    *v = ((*v - m) * s).clamp(-clip, *clip);
                }
            }
        }
        // One thread: the two trunks on two threads (`rayon::join`) measured slower at
        // batch 64 and 256; waking the second thread cost more than it saved.
        let n_layers = self.layers.len();
        let silu = self.activation == Activation::Silu;
        trunks.resize_with(self.trunks, TrunkTape::default);
        for (t, trunk) in trunks.iter_mut().enumerate() {
            trunk.outs.resize_with(n_layers, || Array2::zeros((0, 0)));
            trunk
                .pre
                .resize_with(if silu { n_layers } else { 0 }, || Array2::zeros((0, 0)));
            for (l, layer) in self.layers.iter().enumerate() {
                let (below, rest) = trunk.outs.split_at_mut(l);
                let input = below.last().unwrap_or(&*x).view();
                let out = &mut rest[0];
                ensure(out, n, layer.w[t].ncols());
                affine_into(input, &layer.w[t], &layer.b[t], out);
                if silu {
                    ensure(&mut trunk.pre[l], n, out.ncols());
                    trunk.pre[l].assign(out);
                }
                self.activate(out.as_slice_mut().expect("row-major"));
            }
        }
        let vt = self.trunks - 1;
        let top = |t: usize| trunks[t].outs.last().unwrap_or(&*x).view();
        for (head, input, buf) in [
            (&self.policy_head, top(0), &mut *logits),
            (&self.value_head, top(vt), &mut *values),
        ] {
            buf.resize(n * head.w.ncols(), 0.0);
            let mut out = ArrayViewMut2::from_shape((n, head.w.ncols()), &mut buf[..])
                .expect("head output shape");
            affine_into(input, &head.w, &head.b, &mut out);
        }
    }

    /// Gradients of every trained parameter given the gradients of the loss with respect to
    /// the logits (`[n, n_actions]`) and the values (`[n]`) of `tape`'s forward pass (the
    /// tape's scratch space is reused).
    ///
    /// # Panics
    /// When the lengths do not match the tape's batch.
    pub fn backward(
        &self,
        tape: &mut HostMlpTape,
        d_logits: &[f32],
        d_values: &[f32],
    ) -> Vec<HostParamGrad> {
        let mut grads = Vec::new();
        self.backward_into(tape, d_logits, d_values, &mut grads);
        grads
    }

    /// [`backward`](Self::backward) into `grads`, reusing its buffers when it already holds
    /// this network's gradients (ids, order and shapes of [`params`](Self::params)).
    ///
    /// # Panics
    /// When the lengths do not match the tape's batch.
    pub fn backward_into(
        &self,
        tape: &mut HostMlpTape,
        d_logits: &[f32],
        d_values: &[f32],
        grads: &mut Vec<HostParamGrad>,
    ) {
        let reusable = {
            let mut ids = self.param_ids();
            grads.iter().all(|g| Some(g.id) == ids.next()) && ids.next().is_none()
        };
        if !reusable {
            *grads = self.params();
        }
        let HostMlpTape {
            x, trunks, scratch, ..
        } = tape;
        let n = x.nrows();
        let dl = ArrayView2::from_shape((n, self.n_actions), d_logits).expect("d_logits shape");
        let dv = ArrayView2::from_shape((n, 1), d_values).expect("d_values shape");
        let vt = self.trunks - 1;
        let top = |t: usize| trunks[t].outs.last().unwrap_or(&*x).view();
        let mut slots = grads.iter_mut();
        for (h, input, d) in [
            (&self.policy_head, top(0), dl),
            (&self.value_head, top(vt), dv),
        ] {
            let w = slots.next().expect("head weight");
            w.values.fill(0.0);
            let mut dw =
                ArrayViewMut2::from_shape(h.w.dim(), &mut w.values[..]).expect("head weight shape");
            matmul_acc(input.t(), d, &mut dw);
            if h.b_id.is_some() {
                let b = slots.next().expect("head bias");
                col_sums_into(d.as_slice().expect("row-major"), &mut b.values);
            }
        }
        if self.layers.is_empty() {
            return;
        }
        // The gradient at each trunk's output (the policy head's into trunk 0, the value
        // head's into the last trunk: the same one when the trunk is shared).
        scratch.resize_with(self.trunks, Default::default);
        let width = self.policy_head.w.nrows();
        for t in 0..self.trunks {
            view_of(&mut scratch[t][0], n, width).fill(0.0);
        }
        matmul_acc(
            dl,
            self.policy_head.w.t(),
            &mut view_of(&mut scratch[0][0], n, width),
        );
        matmul_acc(
            dv,
            self.value_head.w.t(),
            &mut view_of(&mut scratch[vt][0], n, width),
        );
        // Each layer's weight and bias gradient slots (`[K, d_in, d_out]`, `[K, 1, d_out]`).
        let mut layer_slots: Vec<(&mut HostParamGrad, Option<&mut HostParamGrad>)> = self
            .layers
            .iter()
            .map(|l| {
                let w = slots.next().expect("layer weight");
                (w, l.b_id.map(|_| slots.next().expect("layer bias")))
            })
            .collect();
        for t in 0..self.trunks {
            let trunk = &trunks[t];
            let [g, below] = &mut scratch[t];
            for l in (0..self.layers.len()).rev() {
                let layer = &self.layers[l];
                let (d_in, d_out) = layer.w[t].dim();
                let mut gv = view_of(g, n, d_out);
                self.activation_backward(
                    gv.as_slice_mut().expect("row-major"),
                    trunk.outs[l].as_slice().expect("row-major"),
                    trunk.pre.get(l),
                );
                let input = if l == 0 { &*x } else { &trunk.outs[l - 1] };
                let size = d_in * d_out;
                let (w_grad, b_grad) = &mut layer_slots[l];
                let w_slot = &mut w_grad.values[t * size..(t + 1) * size];
                w_slot.fill(0.0);
                let mut dw =
                    ArrayViewMut2::from_shape((d_in, d_out), w_slot).expect("weight shape");
                matmul_acc(input.view().t(), gv.view(), &mut dw);
                if let Some(b_grad) = b_grad {
                    let b_slot = &mut b_grad.values[t * d_out..(t + 1) * d_out];
                    col_sums_into(gv.as_slice().expect("row-major"), b_slot);
                }
                if l > 0 {
                    let mut next = view_of(below, n, d_in);
                    next.fill(0.0);
                    matmul_acc(gv.view(), layer.w[t].t(), &mut next);
                    std::mem::swap(g, below);
                }
            }
        }
    }

    /// The ids of [`params`](Self::params), in its order.
    fn param_ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        [&self.policy_head, &self.value_head]
            .into_iter()
            .flat_map(|h| std::iter::once(h.w_id).chain(h.b_id))
            .chain(
                self.layers
                    .iter()
                    .flat_map(|l| std::iter::once(l.w_id).chain(l.b_id)),
            )
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
        let mut tape = host.forward(&x, n);
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
        let host_grads = host.backward(&mut tape, &wl, &wv);
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

    /// `params` lists what `backward` differentiates, in its order; `set_params` and
    /// `load_host_params` carry changed values into the snapshot and into the Burn module.
    #[test]
    fn params_round_trip_through_the_snapshot_and_the_module() {
        for shared in [false, true] {
            let dev = Default::default();
            let net = ActorCriticConfig::new(5, 3)
                .with_hidden(vec![16, 8])
                .with_shared_trunk(shared)
                .with_seed(5)
                .init::<AB>(&dev);
            let mut host = HostActorCritic::from_actor_critic(&net).expect("scalar critic");
            let mut tape = host.forward(&obs(4, 5), 4);
            let grads = host.backward(&mut tape, &[0.5; 12], &[1.0; 4]);
            let mut params = host.params();
            assert_eq!(params.len(), grads.len());
            for (p, g) in params.iter().zip(&grads) {
                assert_eq!((p.id, &p.shape), (g.id, &g.shape));
                assert_eq!(p.values.len(), g.values.len());
            }
            for (k, p) in params.iter_mut().enumerate() {
                for (i, v) in p.values.iter_mut().enumerate() {
                    *v += 0.01 * (k + 1) as f32 - 0.001 * i as f32;
                }
            }
            host.set_params(&params);
            let moved = load_host_params(net.clone(), &params);
            let again = HostActorCritic::from_actor_critic(&moved).expect("scalar critic");
            for (a, b) in [(&host, &params), (&again, &params)] {
                for (x, y) in a.params().iter().zip(b.iter()) {
                    assert_eq!(x.values, y.values);
                }
            }
            // The module is the same module: ids kept, parameters still trained.
            let x = Tensor::<AB, 2>::from_data(TensorData::new(obs(4, 5), [4, 5]), &dev);
            let out = moved.forward(x);
            let g = out.values.sum().backward();
            assert!(moved.value_head.weight.val().grad(&g).is_some());
            assert_eq!(moved.value_head.weight.id, net.value_head.weight.id);
            close(
                &host.forward(&obs(4, 5), 4).values,
                &param_values(
                    moved
                        .forward(Tensor::from_data(TensorData::new(obs(4, 5), [4, 5]), &dev))
                        .values,
                ),
                2e-5,
                "values after the move",
            );
        }
    }

    /// One tape and one gradient list reused over batches of changing size give exactly the
    /// results of fresh ones.
    #[test]
    fn reused_tape_and_gradients_match_fresh_ones() {
        for (activation, shared) in [(Activation::Silu, false), (Activation::Tanh, true)] {
            let net = ActorCriticConfig::new(5, 3)
                .with_hidden(vec![16, 8])
                .with_activation(activation)
                .with_shared_trunk(shared)
                .with_seed(6)
                .init::<AB>(&Default::default());
            let host = HostActorCritic::from_actor_critic(&net).expect("scalar critic");
            let (mut tape, mut grads) = (HostMlpTape::default(), Vec::new());
            for n in [70, 7, 1, 70] {
                let x = obs(n, 5);
                let dl: Vec<f32> = (0..n * 3).map(|i| (i as f32 * 0.3).sin()).collect();
                let dv: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.1).collect();
                host.forward_into(&x, n, &mut tape);
                host.backward_into(&mut tape, &dl, &dv, &mut grads);
                let mut fresh = host.forward(&x, n);
                assert_eq!(tape.logits, fresh.logits, "n = {n}");
                assert_eq!(tape.values, fresh.values, "n = {n}");
                let fresh_grads = host.backward(&mut fresh, &dl, &dv);
                for (a, b) in grads.iter().zip(&fresh_grads) {
                    assert_eq!((a.id, &a.shape, &a.values), (b.id, &b.shape, &b.values));
                }
            }
        }
    }

    #[test]
    fn quantile_critics_are_not_covered() {
        let net = ActorCriticConfig::new(4, 2)
            .with_n_quantiles(8)
            .init::<NdArray<f32>>(&Default::default());
        assert!(HostActorCritic::from_actor_critic(&net).is_none());
    }
}
