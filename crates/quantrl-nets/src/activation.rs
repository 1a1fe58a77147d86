//! Activations, with fast formulations for CPU backends.
//!
//! Burn 0.21's CPU backends (ndarray and flex) evaluate `tanh`, `sigmoid` and `exp` element by
//! element with scalar libm calls. Measured on this project's 2-core machine (see
//! `docs/BENCHMARKS.md`), `tanh` costs about 26 ns per element against about 5 ns for `exp`
//! and under 0.4 ns for SIMD add/mul. [`tanh`] and [`sigmoid`] here are written through one
//! `exp` and cheap arithmetic, which Burn's autodiff differentiates exactly:
//!
//! * `tanh(x) = 1 - 2 / (exp(2x') + 1)` with `x' = clamp(x, ±20)`: `tanh(±20)` is `±1` in
//!   f32 and f64 alike, so the clamp changes no value, and it keeps `exp` finite: without it
//!   `exp(2x)` overflows for `x > 44`, and although the value is still exactly 1 the
//!   backward pass multiplies a zero gradient by `exp(2x) = ∞` and returns NaN. The absolute
//!   error is within a few float32 ulps of 1 everywhere (relative error grows near 0, where
//!   `|tanh x| ≈ |x|` is tiny; a network never notices an absolute error of ~1e-7).
//! * `sigmoid(x) = 1 / (1 + exp(-x'))` with `x' = clamp(x, ±40)` for the same reason
//!   (`exp(40) ≈ 2e17`; beyond it the value moves by under `5e-18`).
//!
//! No NaN for any finite or infinite input, in the values or in the gradients.
//!
//! On GPU backends the native kernels are as fast; [`Activation::TanhNative`] keeps them
//! available.

use burn::tensor::{Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

/// `tanh` through one `exp`: `1 - 2 / (exp(2x) + 1)`. See the module docs.
pub fn tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clamp(-20.0, 20.0)
        .mul_scalar(2.0)
        .exp()
        .add_scalar(1.0)
        .recip()
        .mul_scalar(-2.0)
        .add_scalar(1.0)
}

/// `sigmoid` through one `exp`: `1 / (1 + exp(-x))`. See the module docs.
pub fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clamp(-40.0, 40.0).neg().exp().add_scalar(1.0).recip()
}

/// Hidden-layer activation of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `tanh` in the fast formulation ([`tanh`]); the default, as in SB3's MlpPolicy.
    #[default]
    Tanh,
    /// Burn's own `tanh` kernel (fastest on GPUs).
    TanhNative,
    /// Rectified linear unit.
    Relu,
    /// Sigmoid-weighted linear unit `x * sigmoid(x)`.
    Silu,
}

impl Activation {
    /// Apply the activation.
    pub fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::Tanh => tanh(x),
            Activation::TanhNative => activation::tanh(x),
            Activation::Relu => activation::relu(x),
            Activation::Silu => x.clone() * sigmoid(x),
        }
    }

    /// The orthogonal-initialization gain SB3 uses for hidden layers with this activation
    /// (√2 throughout, as SB3 does regardless of activation).
    pub fn hidden_gain(self) -> f64 {
        std::f64::consts::SQRT_2
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tanh" => Ok(Activation::Tanh),
            "tanh_native" => Ok(Activation::TanhNative),
            "relu" => Ok(Activation::Relu),
            "silu" => Ok(Activation::Silu),
            _ => Err(format!(
                "unknown activation `{s}` (tanh, tanh_native, relu, silu)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    type B = Autodiff<NdArray<f32>>;

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.01).collect();
        v.extend([
            -1e30,
            -100.0,
            -45.0,
            45.0,
            100.0,
            1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            1e-6,
            -1e-6,
        ]);
        v
    }

    #[test]
    fn fast_tanh_and_sigmoid_match_plain_values_and_gradients() {
        let dev = Default::default();
        let xs = grid();
        let n = xs.len();
        for (name, fast, plain, tol) in [
            (
                "tanh",
                tanh::<B, 1> as fn(Tensor<B, 1>) -> Tensor<B, 1>,
                activation::tanh::<1, B> as fn(Tensor<B, 1>) -> Tensor<B, 1>,
                3e-7f32,
            ),
            (
                "sigmoid",
                sigmoid::<B, 1>,
                activation::sigmoid::<1, B>,
                3e-7,
            ),
        ] {
            let xa =
                Tensor::<B, 1>::from_data(TensorData::new(xs.clone(), [n]), &dev).require_grad();
            let xb =
                Tensor::<B, 1>::from_data(TensorData::new(xs.clone(), [n]), &dev).require_grad();
            let ya = fast(xa.clone());
            let yb = plain(xb.clone());
            let va: Vec<f32> = ya.clone().into_data().to_vec().unwrap();
            let vb: Vec<f32> = yb.clone().into_data().to_vec().unwrap();
            let ga = ya.sum().backward();
            let gb = yb.sum().backward();
            let da: Vec<f32> = xa.grad(&ga).unwrap().into_data().to_vec().unwrap();
            let db: Vec<f32> = xb.grad(&gb).unwrap().into_data().to_vec().unwrap();
            for i in 0..n {
                assert!(!va[i].is_nan(), "{name}({}) is NaN", xs[i]);
                // Saturated inputs used to give NaN gradients (0 · exp overflow).
                assert!(da[i].is_finite(), "{name}'({}) = {}", xs[i], da[i]);
                assert!(
                    (va[i] - vb[i]).abs() <= tol,
                    "{name}({}) = {} vs {}",
                    xs[i],
                    va[i],
                    vb[i]
                );
                if xs[i].is_finite() {
                    assert!(
                        (da[i] - db[i]).abs() <= 1e-6,
                        "{name}'({}) = {} vs {}",
                        xs[i],
                        da[i],
                        db[i]
                    );
                }
            }
        }
    }
}
