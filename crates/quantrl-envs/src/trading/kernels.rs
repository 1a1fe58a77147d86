//! Branch-free, vectorizable helpers of the trading step: logarithms of NAV ratios,
//! exponentials of a softmax, float copies without `memcpy` calls, and the lane arrays of the
//! block passes. Everything is `#[inline(always)]`, so it is compiled into each version of the
//! step that [`quantrl_core::multiversion!`] builds.

/// Environments stepped together by the lane passes of a step: one AVX-512 vector of `f64`.
pub(crate) const LANES: usize = 8;
const _: () = assert!(LANES.is_power_of_two(), "lane sums add lanes pairwise");

/// `ln(x)` for the ratio of consecutive NAVs: near 1 (the usual case) by the series
/// `ln x = 2 atanh(u) = 2 (u + u^3/3 + u^5/5 + ...)`, `u = (x - 1) / (x + 1)`, which for
/// `|u| < 0.05` (x within about 10% of 1) reaches double precision in eight terms; elsewhere
/// libm. Branch-free on the common path so that [`ln_ratio_batch`] vectorizes.
#[inline(always)]
pub(crate) fn ln_ratio_series(x: f64) -> f64 {
    let u = (x - 1.0) / (x + 1.0);
    let u2 = u * u;
    let p = 1.0 / 15.0;
    let p = 1.0 / 13.0 + u2 * p;
    let p = 1.0 / 11.0 + u2 * p;
    let p = 1.0 / 9.0 + u2 * p;
    let p = 1.0 / 7.0 + u2 * p;
    let p = 1.0 / 5.0 + u2 * p;
    let p = 1.0 / 3.0 + u2 * p;
    let p = 1.0 + u2 * p;
    2.0 * u * p
}

/// Where [`ln_ratio_series`] is exact to double precision: `|x - 1| / (x + 1) < 0.05`.
#[inline(always)]
pub(crate) fn series_ok(x: f64) -> bool {
    (x - 1.0).abs() < 0.05 * (x + 1.0)
}

/// `out[i] = ln(x[i])`: the series for every element in one vectorizable pass, then libm for
/// the few outside its range. The logarithm is the longest dependency chain of a trading
/// step; taken for all environments at once it costs a few nanoseconds each.
#[inline(always)]
pub(crate) fn ln_ratio_batch(x: &[f64], out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = ln_ratio_series(v);
    }
    // Checked first so that the (rare) libm calls are not made for every element: the
    // compiler may otherwise evaluate `ln` on all lanes and select.
    if x.iter().all(|&v| series_ok(v)) {
        return;
    }
    for (o, &v) in out.iter_mut().zip(x) {
        if !series_ok(v) {
            *o = v.ln();
        }
    }
}

/// Scalar form of [`ln_ratio_batch`] for tests.
#[cfg(test)]
pub(crate) fn ln_ratio(x: f64) -> f64 {
    let mut out = [0.0];
    ln_ratio_batch(&[x], &mut out);
    out[0]
}

/// `dst = src` for float slices of equal length without a call to `memcpy` (whose call and
/// size dispatch cost more than the copy for a feature window of a few dozen or hundred
/// floats): whole blocks, then one last block that overlaps the one before; blocks of 16
/// (one AVX-512 vector) for long windows, of 8 for short ones.
#[inline(always)]
pub(crate) fn copy_floats(dst: &mut [f32], src: &[f32]) {
    if dst.len() >= 64 {
        copy_blocks::<16>(dst, src)
    } else {
        copy_blocks::<8>(dst, src)
    }
}

/// [`copy_floats`] by blocks of `BLOCK`.
#[inline(always)]
pub(crate) fn copy_blocks<const BLOCK: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    assert_eq!(n, src.len(), "copy_floats: lengths differ");
    if n < BLOCK {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
        return;
    }
    let mut k = 0;
    while k + BLOCK <= n {
        let block: &[f32; BLOCK] = src[k..k + BLOCK].try_into().expect("a block");
        dst[k..k + BLOCK].copy_from_slice(block);
        k += BLOCK;
    }
    if k < n {
        let block: &[f32; BLOCK] = src[n - BLOCK..].try_into().expect("a block");
        dst[n - BLOCK..].copy_from_slice(block);
    }
}

/// The sum of `x` by [`LANES`] running sums (element `k` into lane `k % LANES`), the lanes
/// then added pairwise: a fixed order whatever the vector width, and a dependency chain a
/// `LANES`-th as long as an in-order sum.
#[inline(always)]
pub(crate) fn lane_sum(x: &[f64]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            lanes[j] += c[j];
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += v;
    }
    let mut width = LANES / 2;
    while width > 0 {
        for j in 0..width {
            lanes[j] += lanes[j + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// The sum of `x` by four running sums (element `k` into sum `k % 4`), added as
/// `(s0 + s1) + (s2 + s3)`: a fixed order, a dependency chain a quarter as long.
#[inline(always)]
pub(crate) fn sum4(x: &[f64]) -> f64 {
    sum4_of(x, |v| v)
}

/// [`sum4`] of the absolute values.
#[inline(always)]
pub(crate) fn abs_sum4(x: &[f64]) -> f64 {
    sum4_of(x, f64::abs)
}

/// [`sum4`] of `f(x[k])`.
#[inline(always)]
fn sum4_of(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut s = [0.0f64; 4];
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        for j in 0..4 {
            s[j] += f(c[j]);
        }
    }
    for (l, &v) in s.iter_mut().zip(chunks.remainder()) {
        *l += f(v);
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// The first `m` elements of `src` as a lane array, `fill` in the lanes past `m` (neutral
/// values that keep the lane arithmetic finite; they are never stored back).
#[inline(always)]
pub(crate) fn load_lanes<T: Copy>(src: &[T], fill: T) -> [T; LANES] {
    match <&[T; LANES]>::try_from(src) {
        Ok(full) => *full,
        Err(_) => {
            let mut out = [fill; LANES];
            for (o, s) in out.iter_mut().zip(src) {
                *o = *s;
            }
            out
        }
    }
}

/// Store the first `dst.len()` lanes.
#[inline(always)]
pub(crate) fn store_lanes<T: Copy>(dst: &mut [T], lanes: &[T; LANES]) {
    match <&mut [T; LANES]>::try_from(&mut *dst) {
        Ok(full) => *full = *lanes,
        Err(_) => {
            for (d, l) in dst.iter_mut().zip(lanes) {
                *d = *l;
            }
        }
    }
}

/// `e^x` for `x <= 0`, written without branches or libm calls so that a loop over a slice
/// compiles to vector instructions (libm's `exp` is a scalar call, a fifth of a 20-asset
/// softmax step). Cody-Waite reduction `x = n ln 2 + r`, `|r| <= ln 2 / 2`, with `ln 2` split
/// so that `n ln2_hi` is exact; `e^r` by its Taylor polynomial of degree 13 (truncation below
/// `5e-18` relative); `2^n` from the exponent bits. Within 2 ulp of the exact value for
/// `x >= -708` (tested); below `-708` (where `e^x < 3.1e-308` and the result would be
/// subnormal) it returns 0, as it does for `x = -inf`. NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_non_positive(x: f64) -> f64 {
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    /// `1.5 * 2^52`: adding it rounds a double of magnitude below `2^51` to an integer.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let underflow = x < -708.0;
    // Not `max`, which would turn a NaN into -708.
    let xc = if underflow { -708.0 } else { x };
    let t = xc * std::f64::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    // The low mantissa bits of `t` hold the integer `n` (two's complement).
    let ni = t.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    for k in (1..=12).rev() {
        p = p * r + INV_FACTORIAL[k];
    }
    let p = p * r + 1.0;
    let scale = f64::from_bits(((ni + 1023) as u64) << 52);
    if underflow { 0.0 } else { p * scale }
}

/// `1 / k!` for `k = 0..=12`.
const INV_FACTORIAL: [f64; 13] = {
    let mut out = [1.0; 13];
    let mut k = 1;
    while k < 13 {
        out[k] = out[k - 1] / k as f64;
        k += 1;
    }
    out
};

/// `n` rounded up to whole lane blocks ([`LANES`]).
#[inline(always)]
pub(crate) fn padded(n: usize) -> usize {
    n.next_multiple_of(LANES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sums_add_in_their_stated_order() {
        for n in 0..=21 {
            // Exact small integers: every order gives the same sum.
            let x: Vec<f64> = (0..n).map(|k| (k * 7 % 11) as f64 - 5.0).collect();
            let exact: f64 = x.iter().sum();
            assert_eq!(lane_sum(&x), exact, "lane_sum, n = {n}");
            assert_eq!(sum4(&x), exact, "sum4, n = {n}");
            let abs: f64 = x.iter().map(|v| v.abs()).sum();
            assert_eq!(abs_sum4(&x), abs, "abs_sum4, n = {n}");
        }
        // The order shows where rounding does: 1e16 + 1 + 1 rounds each 1 away in sequence,
        // while sum4 adds the two ones first (elements 1 and 5 share a running sum).
        let mut x = vec![0.0; 6];
        x[0] = 1e16;
        x[1] = 1.0;
        x[5] = 1.0;
        assert_eq!(sum4(&x), 1e16 + 2.0);
        assert_eq!(x.iter().fold(0.0, |s, v| s + v), 1e16);
        // lane_sum: elements 0 and 8 share lane 0; lanes are then added pairwise.
        let mut y = vec![0.0; 9];
        y[0] = 1e16;
        y[4] = 1.0;
        y[8] = -1e16;
        assert_eq!(lane_sum(&y), 1.0);
        // A single element is itself, bit for bit (the single-asset path relies on it).
        assert_eq!(sum4(&[0.1]), 0.1);
        assert_eq!(lane_sum(&[0.1]), 0.1);
    }

    #[test]
    fn ln_ratio_matches_libm() {
        let mut worst = 0.0f64;
        for k in 0..200_001 {
            let x = 0.5 + k as f64 * 1e-5;
            let (a, b) = (ln_ratio(x), x.ln());
            worst = worst.max((a - b).abs() / b.abs().max(1e-300));
            assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(f64::MIN_POSITIVE));
        }
        assert!(worst < 1e-15, "{worst}");
        assert_eq!(ln_ratio(1.0), 0.0);
        assert_eq!(ln_ratio(1e-9), 1e-9f64.ln());
    }

    #[test]
    fn exp_non_positive_is_within_two_ulp_of_libm() {
        let ulp = |v: f64| f64::from_bits(v.to_bits() + 1) - v;
        let mut worst = 0.0f64;
        for k in 0..=2_000_000u32 {
            let x = -708.0 * k as f64 / 2_000_000.0;
            let (ours, exact) = (exp_non_positive(x), x.exp());
            let err = (ours - exact).abs() / ulp(exact);
            worst = worst.max(err);
            assert!(err <= 2.0, "x = {x}: {ours} vs {exact} ({err} ulp)");
        }
        assert!(worst <= 2.0, "{worst}");
        for x in [0.0, -0.0, -1e-300, -1e-10, -0.5, -1.0, -20.0] {
            assert!(
                (exp_non_positive(x) - x.exp()).abs() <= 2.0 * ulp(x.exp()),
                "{x}"
            );
        }
        assert_eq!(exp_non_positive(0.0), 1.0);
        assert_eq!(exp_non_positive(-709.0), 0.0);
        assert_eq!(exp_non_positive(f64::NEG_INFINITY), 0.0);
        assert!(exp_non_positive(f64::NAN).is_nan());
    }

    #[test]
    fn float_copies_of_every_length() {
        for n in 0..200 {
            let src: Vec<f32> = (0..n).map(|k| k as f32 + 0.5).collect();
            let mut dst = vec![0.0; n];
            copy_floats(&mut dst, &src);
            assert_eq!(dst, src);
        }
    }

    #[test]
    fn lanes_load_and_store_partial_blocks() {
        let src = [1.0, 2.0, 3.0];
        let lanes = load_lanes(&src, 9.0);
        assert_eq!(lanes, [1.0, 2.0, 3.0, 9.0, 9.0, 9.0, 9.0, 9.0]);
        let mut dst = [0.0; 3];
        store_lanes(&mut dst, &lanes);
        assert_eq!(dst, src);
        let full = [4.0; LANES];
        assert_eq!(load_lanes(&full, 0.0), full);
    }
}
