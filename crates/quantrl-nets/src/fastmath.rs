//! `exp`, `tanh` and `sigmoid` for `f32` slices on the host, written without branches or libm
//! calls so that loops over slices compile to SIMD code.
//!
//! `f32::exp` is a scalar libm call (≈ 5 ns per element on this project's machine, see
//! `docs/BENCHMARKS.md`); [`exp`] here is Cody-Waite range reduction `x = n ln 2 + r`,
//! `|r| ≤ ln 2 / 2`, a degree-7 Taylor polynomial for `exp(r)` (truncation error below
//! `4e-9` relative) and `2^n` built from the exponent bits. Its relative error against the
//! exact value is within a few float32 ulps (tested below) for inputs in `[-87, 88]`; inputs
//! outside are clamped to that range (so `exp(-100)` returns `exp(-87) ≈ 1.6e-38`, not 0, and
//! `exp(100)` returns `exp(88)`), which is why only the activations below use it.
//!
//! [`tanh`] and [`sigmoid`] are the formulations of [`crate::activation`] (`1 - 2 / (exp(2x) +
//! 1)` and `1 / (1 + exp(-x))`, arguments clamped to ±20 and ±40), so the host training
//! paths compute what Burn's graph computes, to float32 rounding.
//!
//! [`quantrl_core::multiversion!`] compiles a loop three times (SSE2, AVX2, AVX-512) and picks
//! the widest the CPU has at run time, since the portable build targets SSE2 only:
//! [`tanh_in_place`], [`sigmoid_in_place`], the host GRU step, the host-BPTT gate loops, the
//! narrow products of `host_mlp` and the blocked matrix kernels (`gemm`) use it.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `1.5 · 2^23`: adding it rounds an `f32` of magnitude below `2^22` to an integer.
const ROUND: f32 = 12_582_912.0;
/// `ln 2` split in two (Cephes): `LN2_HI` has few mantissa bits, so `n · LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x` for one `f32` (see the [module docs](self) for accuracy and range).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    // The low mantissa bits of `t` hold the integer `n` (two's complement).
    let ni = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

/// `tanh(x) = 1 - 2 / (exp(2x) + 1)`, the argument clamped to ±20 (no value changes).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x.clamp(-20.0, 20.0)) + 1.0)
}

/// `sigmoid(x) = 1 / (1 + exp(-x))`, the argument clamped to ±40 (no value changes).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x.clamp(-40.0, 40.0)))
}

use quantrl_core::multiversion;

multiversion! {
    /// [`tanh`] of every element, in place (vectorized for the CPU's widest vector unit).
    pub fn tanh_in_place(x: &mut [f32]) {
        for v in x {
            *v = tanh(*v);
        }
    }
}

multiversion! {
    /// [`sigmoid`] of every element, in place (vectorized for the CPU's widest vector unit).
    pub fn sigmoid_in_place(x: &mut [f32]) {
        for v in x {
            *v = sigmoid(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-197_727..=200_000).map(|i| i as f32 * 4.4e-4)
    }

    #[test]
    fn exp_is_within_a_few_ulps() {
        let mut worst = 0f64;
        for x in grid() {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        // 2^-23 ≈ 1.19e-7 is one ulp at the top of a binade.
        assert!(worst < 4e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::INFINITY).is_finite() && exp(f32::NEG_INFINITY) > 0.0);
        assert!((exp(88.0) as f64 / 88f64.exp() - 1.0).abs() < 4e-7);
        assert!((exp(-87.0) as f64 / (-87f64).exp() - 1.0).abs() < 4e-7);
    }

    #[test]
    fn tanh_and_sigmoid_match_the_exact_functions() {
        let (mut worst_t, mut worst_s) = (0f64, 0f64);
        for x in grid() {
            let xd = x as f64;
            worst_t = worst_t.max((tanh(x) as f64 - xd.tanh()).abs());
            worst_s = worst_s.max((sigmoid(x) as f64 - 1.0 / (1.0 + (-xd).exp())).abs());
        }
        assert!(worst_t < 5e-7, "tanh: worst absolute error {worst_t:e}");
        assert!(worst_s < 2e-7, "sigmoid: worst absolute error {worst_s:e}");
        for (x, t, s) in [
            (f32::INFINITY, 1.0, 1.0),
            (f32::NEG_INFINITY, -1.0, 0.0),
            (1e30, 1.0, 1.0),
            (-1e30, -1.0, 0.0),
        ] {
            assert_eq!(tanh(x), t);
            assert!((sigmoid(x) - s).abs() < 1e-17, "{x}: {}", sigmoid(x));
        }
    }

    #[test]
    fn slices_agree_with_the_scalar_functions() {
        let mut a: Vec<f32> = grid().step_by(97).collect();
        let mut b = a.clone();
        let want_t: Vec<f32> = a.iter().map(|&x| tanh(x)).collect();
        let want_s: Vec<f32> = b.iter().map(|&x| sigmoid(x)).collect();
        tanh_in_place(&mut a);
        sigmoid_in_place(&mut b);
        assert_eq!(a, want_t);
        assert_eq!(b, want_s);
    }
}
