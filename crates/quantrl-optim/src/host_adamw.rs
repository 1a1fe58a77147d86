//! AdamW on host buffers, operation for operation Burn's AdamW, for training loops that compute
//! their gradients outside Burn (the host paths of `quantrl-algos`).
//!
//! Burn's AdamW steps a parameter with about fourteen tensor operations, each with its own
//! dispatch and allocation; for the small networks of a PPO minibatch that overhead is a large
//! part of the step. [`HostAdamW`] takes the optimizer state of a set of parameters out of
//! Burn's optimizer ([`HostAdamW::take`]), steps plain `f32` slices
//! ([`AdamWSettings::host_step`]) and puts the state back ([`HostAdamW::put`]), so a checkpoint
//! written afterwards holds exactly what Burn's optimizer would hold.
//!
//! # The update
//!
//! Per element, in `f32` and in this order (Burn 0.21's `AdamW`/`AdaptiveMomentumW`, no AMSGrad,
//! no cautious decay), with `t` the parameter's step count from 1:
//!
//! ```text
//! m  <- β1 m + (1 - β1) g            (m = (1 - β1) g at t = 1)
//! v  <- β2 v + (1 - β2) g²           (v = (1 - β2) g² at t = 1)
//! δ  =  (m / (1 - β1^t)) / (sqrt(v / (1 - β2^t)) + ε)
//! p  <- p (1 - lr λ) - lr δ          (no decay factor when lr λ = 0)
//! ```
//!
//! The tests check that the result is bit-for-bit Burn's on its ndarray backend.

use burn::module::{AutodiffModule, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWState, AdaptiveMomentumState, Optimizer, SimpleOptimizer};
use burn::optim::{LearningRate, record::AdaptorRecord};
use burn::tensor::{Device, Tensor, TensorData, backend::AutodiffBackend};

use crate::{AdamWSettings, GroupedOptimizer};

/// One parameter's AdamW state on the host: Burn's `AdaptiveMomentumState` as flat vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAdamState {
    /// Steps taken (the bias-correction exponent).
    pub time: usize,
    /// First moment, row-major in the parameter's shape.
    pub moment_1: Vec<f32>,
    /// Second moment, row-major in the parameter's shape.
    pub moment_2: Vec<f32>,
}

impl AdamWSettings {
    /// One AdamW step of `param` with gradient `grad` at learning rate `lr`, updating `state`
    /// (`None` before the parameter's first step). The arithmetic is Burn's (see the
    /// [module docs](crate::host_adamw)).
    ///
    /// # Panics
    /// When `param`, `grad` and the state's moments differ in length.
    pub fn host_step(
        &self,
        lr: LearningRate,
        param: &mut [f32],
        grad: &[f32],
        state: &mut Option<HostAdamState>,
    ) {
        assert_eq!(param.len(), grad.len(), "parameter and gradient lengths");
        let (b1, b2, eps) = (self.beta1 as f32, self.beta2 as f32, self.eps as f32);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let st = match state {
            Some(s) => {
                assert_eq!(s.moment_1.len(), grad.len(), "moment and gradient lengths");
                assert_eq!(s.moment_2.len(), grad.len(), "moment and gradient lengths");
                for ((m, v), &g) in s.moment_1.iter_mut().zip(&mut s.moment_2).zip(grad) {
                    *m = *m * b1 + g * f1;
                    *v = *v * b2 + (g * g) * f2;
                }
                s.time += 1;
                s
            }
            None => state.insert(HostAdamState {
                time: 1,
                moment_1: grad.iter().map(|&g| g * f1).collect(),
                moment_2: grad.iter().map(|&g| (g * g) * f2).collect(),
            }),
        };
        let t = i32::try_from(st.time).unwrap_or(i32::MAX);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        // Burn converts the f64 scalars to the element type.
        let decay_rate = lr * f64::from(self.weight_decay as f32);
        let keep = (1.0 - decay_rate) as f32;
        let lr32 = lr as f32;
        for ((p, &m), &v) in param.iter_mut().zip(&st.moment_1).zip(&st.moment_2) {
            let delta = (m / c1) / ((v / c2).sqrt() + eps);
            let decayed = if decay_rate == 0.0 { *p } else { *p * keep };
            *p = decayed - delta * lr32;
        }
    }
}

/// The AdamW state of a fixed list of parameters, taken out of a Burn optimizer to train on
/// the host and put back afterwards (see the [module docs](crate::host_adamw)).
#[derive(Debug, Clone)]
pub struct HostAdamW {
    settings: AdamWSettings,
    slots: Vec<Slot>,
}

#[derive(Debug, Clone)]
struct Slot {
    id: ParamId,
    shape: Vec<usize>,
    lr_multiplier: f64,
    state: Option<HostAdamState>,
}

/// Burn's optimizer for AdamW with parameter groups, as quantrl builds it.
pub type GroupedAdamW<M, B> = GroupedOptimizer<OptimizerAdaptor<AdamW, M, B>>;

impl HostAdamW {
    /// The state of `params` (id and shape, one to three dimensions) in `optim`, whose
    /// hyperparameters are `settings`; a parameter `optim` has not stepped yet starts fresh.
    ///
    /// # Panics
    /// When a shape has no or more than three dimensions.
    pub fn take<B: AutodiffBackend, M: AutodiffModule<B>>(
        settings: AdamWSettings,
        optim: &GroupedAdamW<M, B>,
        params: impl IntoIterator<Item = (ParamId, Vec<usize>)>,
    ) -> Self {
        let mut record = optim.to_record();
        let slots = params
            .into_iter()
            .map(|(id, shape)| {
                let state = record.remove(&id).map(|r| match shape.len() {
                    1 => host_state::<B, 1>(r.into_state::<1>()),
                    2 => host_state::<B, 2>(r.into_state::<2>()),
                    3 => host_state::<B, 3>(r.into_state::<3>()),
                    n => panic!("host AdamW covers 1 to 3 dimensions, not {n}"),
                });
                Slot {
                    id,
                    lr_multiplier: optim.lr_multiplier(id),
                    shape,
                    state,
                }
            })
            .collect();
        Self { settings, slots }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The state of parameter `index` (`None` before its first step).
    pub fn state(&self, index: usize) -> Option<&HostAdamState> {
        self.slots[index].state.as_ref()
    }

    /// Step parameter `index` (in the order given to [`take`](Self::take)) with its gradient,
    /// at `lr` times its group's multiplier.
    pub fn step(&mut self, lr: LearningRate, index: usize, param: &mut [f32], grad: &[f32]) {
        let slot = &mut self.slots[index];
        self.settings
            .host_step(lr * slot.lr_multiplier, param, grad, &mut slot.state);
    }

    /// Put the state back into `optim`, as its own steps would have left it (tensors on
    /// `device`).
    pub fn put<B: AutodiffBackend, M: AutodiffModule<B>>(
        self,
        optim: GroupedAdamW<M, B>,
        device: &Device<B::InnerBackend>,
    ) -> GroupedAdamW<M, B> {
        let mut record = optim.to_record();
        for slot in self.slots {
            let Some(s) = slot.state else { continue };
            let r = match slot.shape[..] {
                [a] => AdaptorRecord::from_state::<1>(burn_state::<B, 1>(s, [a], device)),
                [a, b] => AdaptorRecord::from_state::<2>(burn_state::<B, 2>(s, [a, b], device)),
                [a, b, c] => {
                    AdaptorRecord::from_state::<3>(burn_state::<B, 3>(s, [a, b, c], device))
                }
                _ => unreachable!("checked in take"),
            };
            record.insert(slot.id, r);
        }
        optim.load_record(record)
    }
}

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

fn host_state<B: AutodiffBackend, const D: usize>(
    s: <AdamW as SimpleOptimizer<Inner<B>>>::State<D>,
) -> HostAdamState {
    let m = s.momentum;
    // The record shares its tensors with the optimizer, and burn-ndarray copies a shared
    // array out element by element through a dynamic-rank iterator; `mul_scalar(1.0)`
    // (bit-exact) makes an unshared one in a single SIMD pass, whose buffer is handed over.
    // (`quantrl_nets::host_mlp::param_values` does the same; this crate sits below it.)
    let values = |t: Tensor<Inner<B>, D>| {
        t.mul_scalar(1.0)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("float moments")
    };
    HostAdamState {
        time: m.time,
        moment_1: values(m.moment_1),
        moment_2: values(m.moment_2),
    }
}

fn burn_state<B: AutodiffBackend, const D: usize>(
    s: HostAdamState,
    shape: [usize; D],
    device: &Device<Inner<B>>,
) -> AdamWState<Inner<B>, D> {
    let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, shape), device);
    AdamWState {
        momentum: AdaptiveMomentumState {
            time: s.time,
            moment_1: t(s.moment_1),
            moment_2: t(s.moment_2),
            max_moment_2: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamGroup;
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;

    type B = Autodiff<NdArray<f32>>;
    type IB = NdArray<f32>;

    fn values<const D: usize>(t: Tensor<IB, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    fn grad_at(step: usize, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7 + step * 13) as f32 * 0.37).sin() * scale)
            .collect()
    }

    /// Burn's AdamW and the host one take the same steps (decay on and off, a group with its
    /// own multiplier, gradients of very different scales) and agree bit for bit, in the
    /// parameters and in the state put back into Burn's record.
    #[test]
    fn host_steps_are_burns_bit_for_bit() {
        let dev = Default::default();
        for weight_decay in [0.0, 0.01] {
            let settings = AdamWSettings {
                weight_decay,
                ..Default::default()
            };
            let model: Linear<B> = LinearConfig::new(5, 3).init(&dev);
            let bias_id = model.bias.as_ref().unwrap().id;
            let groups = vec![ParamGroup {
                name: "bias".into(),
                lr_multiplier: 0.5,
                params: vec![bias_id],
            }];
            let mut burn_opt = GroupedOptimizer::new(settings.init::<B, Linear<B>>(), groups);
            let mut burn_model = model.clone();
            let params = [(model.weight.id, vec![5, 3]), (bias_id, vec![3])];
            // Two Burn steps first, so that the host takes over a non-empty state.
            let mut host_w = values(model.weight.val().inner());
            let mut host_b = values(model.bias.as_ref().unwrap().val().inner());
            let mut host: Option<HostAdamW> = None;
            for step in 0..6 {
                let lr = 1e-2 / (1.0 + step as f64);
                let scale = if step % 2 == 0 { 1e-3 } else { 10.0 };
                let (gw, gb) = (grad_at(step, 15, scale), grad_at(step + 100, 3, scale));
                let mut grads = GradientsParams::new();
                grads.register::<IB, 2>(
                    model.weight.id,
                    Tensor::from_data(TensorData::new(gw.clone(), [5, 3]), &dev),
                );
                grads.register::<IB, 1>(
                    bias_id,
                    Tensor::from_data(TensorData::new(gb.clone(), [3]), &dev),
                );
                burn_model = burn_opt.step(lr, burn_model, grads);
                if step == 2 {
                    host = Some(HostAdamW::take(
                        settings,
                        &GroupedOptimizer::new(
                            burn_opt.inner().clone(),
                            vec![ParamGroup {
                                name: "bias".into(),
                                lr_multiplier: 0.5,
                                params: vec![bias_id],
                            }],
                        ),
                        params.clone(),
                    ));
                    host_w = values(burn_model.weight.val().inner());
                    host_b = values(burn_model.bias.as_ref().unwrap().val().inner());
                    assert_eq!(host.as_ref().unwrap().state(0).unwrap().time, 3);
                } else if let Some(h) = host.as_mut() {
                    h.step(lr, 0, &mut host_w, &gw);
                    h.step(lr, 1, &mut host_b, &gb);
                    assert_eq!(
                        host_w,
                        values(burn_model.weight.val().inner()),
                        "step {step}"
                    );
                    assert_eq!(
                        host_b,
                        values(burn_model.bias.as_ref().unwrap().val().inner()),
                        "step {step}"
                    );
                }
            }
            // The state put back equals Burn's own, element for element.
            let host = host.unwrap();
            let fresh = GroupedOptimizer::new(settings.init::<B, Linear<B>>(), vec![]);
            let put = host.put(fresh, &dev);
            let (mut ours, mut theirs) = (put.to_record(), burn_opt.to_record());
            for (id, d) in [(model.weight.id, 2), (bias_id, 1)] {
                let (a, b) = (ours.remove(&id).unwrap(), theirs.remove(&id).unwrap());
                let (a, b) = if d == 2 {
                    (
                        host_state::<B, 2>(a.into_state::<2>()),
                        host_state::<B, 2>(b.into_state::<2>()),
                    )
                } else {
                    (
                        host_state::<B, 1>(a.into_state::<1>()),
                        host_state::<B, 1>(b.into_state::<1>()),
                    )
                };
                assert_eq!(a, b);
            }
        }
    }

    /// A parameter the optimizer never stepped starts fresh on the host, like Burn's.
    #[test]
    fn fresh_parameters_start_at_step_one() {
        let dev = Default::default();
        let model: Linear<B> = LinearConfig::new(2, 2).init(&dev);
        let opt = GroupedOptimizer::new(AdamWSettings::default().init::<B, Linear<B>>(), vec![]);
        let mut host = HostAdamW::take(
            AdamWSettings::default(),
            &opt,
            [(model.weight.id, vec![2, 2])],
        );
        assert!(host.state(0).is_none());
        let mut p = vec![1.0f32; 4];
        host.step(0.1, 0, &mut p, &[1.0, -1.0, 0.0, 2.0]);
        // First step: δ = g / (|g| + ε) ≈ sign(g).
        assert!(
            (p[0] - 0.9).abs() < 1e-5 && (p[1] - 1.1).abs() < 1e-5,
            "{p:?}"
        );
        assert_eq!(p[2], 1.0);
        assert_eq!(host.state(0).unwrap().time, 1);
    }
}
