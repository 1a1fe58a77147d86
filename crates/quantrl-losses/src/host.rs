//! The PPO loss of [`crate::ppo::ppo_loss`] on the host, with its gradient with respect to the
//! logits and the values derived by hand.
//!
//! A CPU training step that runs its network outside Burn's graph (`quantrl_nets::host_mlp`)
//! has the logits and values as plain arrays; on a minibatch of a few hundred rows the loss is
//! a few thousand floating-point operations, far less than dispatching the ~60 tensor
//! operations of its forward and backward passes. Same conventions as the tensor version
//! (SB3's): advantages normalized per minibatch with the unbiased standard deviation (skipped
//! for a minibatch of one), the clipped surrogate `-mean(min(r A, clip(r, 1 ± ε) A))`, the
//! value loss `mean((R - V_clipped)²)`, the entropy loss `-mean(H)`, `approx_kl =
//! mean((r - 1) - log r)` and the clip fraction. Computed in `f64`; the tests check every term
//! and both gradients against Burn's autodiff of the tensor version.
//!
//! Gradients where the loss has a kink (a ratio exactly at `1 ± ε`, a value change exactly at
//! the value clip) follow the unclipped branch, the choice that makes both branches agree
//! whenever they are equal.

use crate::ppo::PpoLossConfig;

/// One minibatch, row-major.
#[derive(Debug, Clone, Copy)]
pub struct HostPpoBatch<'a> {
    /// Logits `[m, n_actions]`, masks already added (a masked action's logit is very
    /// negative: it gets probability 0 and no gradient).
    pub logits: &'a [f32],
    /// Width of a row of `logits`.
    pub n_actions: usize,
    /// Actions taken, `[m]`.
    pub actions: &'a [u32],
    /// Log-probabilities of the actions when they were taken, `[m]`.
    pub old_log_prob: &'a [f32],
    /// Advantages, `[m]` (normalized here when the config says so).
    pub advantages: &'a [f32],
    /// Current values, `[m]`.
    pub values: &'a [f32],
    /// Values at collection time, `[m]`.
    pub old_values: &'a [f32],
    /// Returns (value targets), `[m]`.
    pub returns: &'a [f32],
}

/// The loss terms (as [`crate::ppo::PpoLossTerms`]) and the gradient of `loss`.
#[derive(Debug, Clone, Default)]
pub struct HostPpoLoss {
    /// `policy_loss + ent_coef · entropy_loss + vf_coef · value_loss`.
    pub loss: f64,
    /// Clipped surrogate loss.
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// `-mean(entropy)`.
    pub entropy_loss: f64,
    /// `mean((r - 1) - log r)`.
    pub approx_kl: f64,
    /// Fraction of ratios outside `1 ± ε`.
    pub clip_fraction: f64,
    /// `∂ loss / ∂ logits`, `[m, n_actions]`.
    pub d_logits: Vec<f32>,
    /// `∂ loss / ∂ values`, `[m]`.
    pub d_values: Vec<f32>,
}

/// The shift and scale of advantage normalization, as SB3 does it: the mean of `advantages`
/// and `1 / (std + 1e-8)` with the unbiased standard deviation, so the normalized advantage
/// is `(a - shift) · scale`; `(0, 1)` (no change) for fewer than two advantages.
pub fn advantage_normalization(advantages: &[f32]) -> (f64, f64) {
    let m = advantages.len();
    if m <= 1 {
        return (0.0, 1.0);
    }
    let mean = advantages.iter().map(|&x| x as f64).sum::<f64>() / m as f64;
    let var = advantages
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / (m - 1) as f64;
    (mean, 1.0 / (var.sqrt() + 1e-8))
}

/// The PPO loss of `batch` and its gradients (see the [module docs](self)).
///
/// # Panics
/// When the slices' lengths disagree with `actions.len()` and `n_actions`, or an action is out
/// of range.
pub fn ppo_loss_host(batch: &HostPpoBatch<'_>, config: &PpoLossConfig) -> HostPpoLoss {
    let m = batch.actions.len();
    let a = batch.n_actions;
    assert_eq!(batch.logits.len(), m * a, "logits are [m, n_actions]");
    for s in [
        batch.old_log_prob,
        batch.advantages,
        batch.values,
        batch.old_values,
        batch.returns,
    ] {
        assert_eq!(s.len(), m, "per-row inputs have one value per action");
    }
    let mut out = HostPpoLoss {
        d_logits: vec![0.0; m * a],
        d_values: vec![0.0; m],
        ..HostPpoLoss::default()
    };
    if m == 0 {
        return out;
    }
    let mf = m as f64;
    // Advantage normalization (no gradient flows through it).
    let (shift, scale) = if config.normalize_advantage {
        advantage_normalization(batch.advantages)
    } else {
        (0.0, 1.0)
    };
    let (lo, hi) = (1.0 - config.clip_range, 1.0 + config.clip_range);
    let mut log_p = vec![0f64; a];
    for i in 0..m {
        let row = &batch.logits[i * a..(i + 1) * a];
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let lse = max
            + row
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let mut entropy = 0.0;
        for (lp, &x) in log_p.iter_mut().zip(row) {
            *lp = x as f64 - lse;
            entropy -= lp.exp() * *lp;
        }
        let act = batch.actions[i] as usize;
        assert!(act < a, "action {act} out of range for {a} actions");
        let log_ratio = log_p[act] - batch.old_log_prob[i] as f64;
        let ratio = log_ratio.exp();
        let adv = (batch.advantages[i] as f64 - shift) * scale;
        let unclipped = adv * ratio;
        let clipped = adv * ratio.clamp(lo, hi);
        let inside = (lo..=hi).contains(&ratio);
        // ∂(-min(..)/m)/∂ log_prob.
        let d_lp = if unclipped <= clipped || inside {
            -unclipped / mf
        } else {
            0.0
        };
        out.policy_loss -= unclipped.min(clipped) / mf;
        out.entropy_loss -= entropy / mf;
        out.approx_kl += (ratio - 1.0 - log_ratio) / mf;
        out.clip_fraction += ((ratio - 1.0).abs() > config.clip_range) as u8 as f64 / mf;
        // ∂/∂z_k: log_prob: δ_k,act - p_k; entropy loss (-H/m · ent_coef): p_k (log p_k + H).
        let d_row = &mut out.d_logits[i * a..(i + 1) * a];
        for (k, (d, &lp)) in d_row.iter_mut().zip(&log_p).enumerate() {
            let p = lp.exp();
            let d_log_prob = (k == act) as u8 as f64 - p;
            let d_entropy_loss = p * (lp + entropy) / mf;
            *d = (d_lp * d_log_prob + config.ent_coef * d_entropy_loss) as f32;
        }
        // Value loss.
        let (v, old, ret) = (
            batch.values[i] as f64,
            batch.old_values[i] as f64,
            batch.returns[i] as f64,
        );
        let (pred, passes) = match config.clip_range_vf {
            Some(c) => {
                let delta = v - old;
                (old + delta.clamp(-c, c), (-c..=c).contains(&delta))
            }
            None => (v, true),
        };
        out.value_loss += (ret - pred).powi(2) / mf;
        out.d_values[i] = if passes {
            (config.vf_coef * 2.0 * (pred - ret) / mf) as f32
        } else {
            0.0
        };
    }
    out.loss =
        out.policy_loss + config.ent_coef * out.entropy_loss + config.vf_coef * out.value_loss;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorical::{log_prob_entropy, one_hot};
    use crate::ppo::{PpoLossInputs, ppo_loss};
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Tensor, TensorData};

    type AB = Autodiff<NdArray<f32>>;

    fn vals<const D: usize>(t: Tensor<NdArray<f32>, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    fn wave(n: usize, f: f32, s: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * f).sin() * s).collect()
    }

    fn compare(m: usize, a: usize, config: PpoLossConfig, masked: bool) {
        let dev = Default::default();
        let mut logits = wave(m * a, 0.77, 2.0);
        if masked {
            // Mask all but one or two actions of each row, as a masked policy does.
            for i in 0..m {
                for k in 0..a {
                    if k != i % a && k != (i * 7 + 1) % a {
                        logits[i * a + k] += -1e8;
                    }
                }
            }
        }
        let actions: Vec<u32> = (0..m).map(|i| (i % a) as u32).collect();
        // Old log-probabilities near the current ones, so some ratios clip and some do not.
        let old_lp: Vec<f32> = {
            let t =
                Tensor::<NdArray<f32>, 2>::from_data(TensorData::new(logits.clone(), [m, a]), &dev);
            let oh = Tensor::from_data(TensorData::new(one_hot(&actions, a), [m, a]), &dev);
            let (lp, _) = log_prob_entropy(t, oh);
            vals(lp)
                .iter()
                .zip(wave(m, 1.9, 0.4))
                .map(|(l, d)| l + d)
                .collect()
        };
        let adv = wave(m, 0.53, 1.5);
        let values = wave(m, 0.31, 1.0);
        let old_values: Vec<f32> = values
            .iter()
            .zip(wave(m, 2.3, 0.5))
            .map(|(v, d)| v + d)
            .collect();
        let returns = wave(m, 0.41, 2.0);
        let host = ppo_loss_host(
            &HostPpoBatch {
                logits: &logits,
                n_actions: a,
                actions: &actions,
                old_log_prob: &old_lp,
                advantages: &adv,
                values: &values,
                old_values: &old_values,
                returns: &returns,
            },
            &config,
        );
        let t1 = |v: &Vec<f32>| Tensor::<AB, 1>::from_data(TensorData::new(v.clone(), [m]), &dev);
        let lt = Tensor::<AB, 2>::from_data(TensorData::new(logits.clone(), [m, a]), &dev)
            .require_grad();
        let vt = t1(&values).require_grad();
        let oh = Tensor::from_data(TensorData::new(one_hot(&actions, a), [m, a]), &dev);
        let (log_prob, entropy) = log_prob_entropy(lt.clone(), oh);
        let terms = ppo_loss(
            PpoLossInputs {
                log_prob,
                old_log_prob: t1(&old_lp),
                entropy,
                advantages: t1(&adv),
                values: vt.clone(),
                old_values: t1(&old_values),
                returns: t1(&returns),
            },
            &config,
        );
        let scalar = |t: Tensor<AB, 1>| t.inner().into_scalar() as f64;
        let want = [
            scalar(terms.loss.clone()),
            scalar(terms.policy_loss),
            scalar(terms.value_loss),
            scalar(terms.entropy_loss),
            scalar(terms.approx_kl),
            scalar(terms.clip_fraction),
        ];
        let got = [
            host.loss,
            host.policy_loss,
            host.value_loss,
            host.entropy_loss,
            host.approx_kl,
            host.clip_fraction,
        ];
        for (name, (g, w)) in ["loss", "policy", "value", "entropy", "kl", "clip"]
            .iter()
            .zip(got.iter().zip(want))
        {
            assert!((g - w).abs() < 2e-5 * (1.0 + w.abs()), "{name}: {g} vs {w}");
        }
        if m > 1 {
            assert!(
                host.clip_fraction > 0.0 && host.clip_fraction < 1.0,
                "the case clips some ratios"
            );
        }
        let grads = terms.loss.backward();
        let dl = vals(lt.grad(&grads).unwrap());
        let dv = vals(vt.grad(&grads).unwrap());
        for (i, (g, w)) in host.d_logits.iter().zip(&dl).enumerate() {
            assert!(
                (g - w).abs() < 2e-5 * (1.0 + w.abs()),
                "d_logits[{i}]: {g} vs {w}"
            );
        }
        for (i, (g, w)) in host.d_values.iter().zip(&dv).enumerate() {
            assert!(
                (g - w).abs() < 2e-5 * (1.0 + w.abs()),
                "d_values[{i}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn matches_the_tensor_loss_and_its_gradients() {
        for normalize_advantage in [true, false] {
            for clip_range_vf in [None, Some(0.2)] {
                for masked in [false, true] {
                    compare(
                        37,
                        5,
                        PpoLossConfig {
                            clip_range: 0.2,
                            clip_range_vf,
                            ent_coef: 0.01,
                            vf_coef: 0.5,
                            normalize_advantage,
                        },
                        masked,
                    );
                }
            }
        }
    }

    #[test]
    fn one_row_and_empty_batches() {
        compare(1, 3, PpoLossConfig::default(), false);
        let none = ppo_loss_host(
            &HostPpoBatch {
                logits: &[],
                n_actions: 2,
                actions: &[],
                old_log_prob: &[],
                advantages: &[],
                values: &[],
                old_values: &[],
                returns: &[],
            },
            &PpoLossConfig::default(),
        );
        assert_eq!(none.loss, 0.0);
    }
}
