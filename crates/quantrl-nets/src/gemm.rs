//! A register-blocked `c += a · b` for the small, cache-resident products of the host paths
//! (`[256, 64] × [64, 64]` hidden layers, their weight and input gradients, a GRU's
//! `[batch, 256] × [256, 768]` gate products).
//!
//! `matrixmultiply` (what `ndarray` calls) packs both operands into panels and runs an AVX2
//! 8×8 kernel: right for large matrices, but for these sizes the packing is a visible share of
//! the time (≈ 8 % of the CartPole host-path profile, the kernel ≈ 33 %) and the kernel uses
//! half of an AVX-512 unit. Here only a strip of `MR` rows of `a` is packed (`MR·k`
//! copies for `MR·k·n` multiply-adds); `b` is read in place, one row of `NR` columns per step,
//! and the `MR × NR` block of `c` stays in registers for the whole `k` loop.
//!
//! The kernel is compiled three times and picked at run time: AVX-512 with FMA (`8 × 32`, 16
//! accumulator registers), AVX2 with FMA (`4 × 16`, 8) and the portable baseline (`4 × 8`, no
//! fused multiply-add). The FMA versions round once per multiply-add, the baseline twice,
//! so results differ between machines in the last bits (as `matrixmultiply`'s do); on one
//! machine they are deterministic.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayRef2, ArrayView2};
use quantrl_core::multiversion;

/// `c[i, j] += Σ_p a[i, p] · b[p, j]` for `i < m`, `j < n`, `p < k`, where `a[i, p] =
/// a[i * rsa + p * csa]` (any strides: row-major `a`, or the transpose of a row-major
/// matrix), `b[p, j] = b[p * ldb + j]` and `c[i, j] = c[i * ldc + j]`.
///
/// # Panics
/// When an index of the product falls outside a slice.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_acc(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!((m - 1) * rsa + (k - 1) * csa < a.len(), "a is too short");
    assert!((k - 1) * ldb + n <= b.len(), "b is too short");
    assert!((m - 1) * ldc + n <= c.len(), "c is too short");
    gemm_dispatch((m, k, n), a, (rsa, csa), b, ldb, c, ldc);
}

multiversion! {
    fn gemm_dispatch(
        dims: (usize, usize, usize),
        a: &[f32],
        strides: (usize, usize),
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) => gemm_body
    { avx512: [true, 8, 32], avx2: [true, 4, 16], portable: [false, 4, 8] }
}

/// `acc + x · y`, fused where the version has FMA.
#[inline(always)]
fn madd<const FMA: bool>(x: f32, y: f32, acc: f32) -> f32 {
    if FMA { x.mul_add(y, acc) } else { acc + x * y }
}

#[inline(always)]
fn gemm_body<const FMA: bool, const MR: usize, const NR: usize>(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    // The strip of `a` as `[k][MR]`, rows past `m` zero.
    let mut strip = vec![0f32; k * MR];
    let mut i0 = 0;
    while i0 < m {
        let mr = MR.min(m - i0);
        if mr == MR && csa == 1 {
            // Row-major `a`: MR rows, each scattered into its lane of the strip.
            for r in 0..MR {
                let row = &a[(i0 + r) * rsa..(i0 + r) * rsa + k];
                for (s, &v) in strip.chunks_exact_mut(MR).zip(row) {
                    s[r] = v;
                }
            }
        } else if mr == MR && rsa == 1 {
            // The transpose of a row-major matrix: each strip step is contiguous.
            for (p, s) in strip.chunks_exact_mut(MR).enumerate() {
                s.copy_from_slice(&a[i0 + p * csa..i0 + p * csa + MR]);
            }
        } else {
            for (p, s) in strip.chunks_exact_mut(MR).enumerate() {
                for (r, v) in s.iter_mut().enumerate() {
                    *v = if r < mr {
                        a[(i0 + r) * rsa + p * csa]
                    } else {
                        0.0
                    };
                }
            }
        }
        let c_rows = &mut c[i0 * ldc..];
        let mut j0 = 0;
        while j0 + NR <= n {
            tile::<FMA, MR, NR>(&strip, &b[j0..], ldb, &mut c_rows[j0..], ldc, mr);
            j0 += NR;
        }
        if j0 < n {
            edge::<FMA, MR>(&strip, &b[j0..], ldb, n - j0, &mut c_rows[j0..], ldc, mr);
        }
        i0 += MR;
    }
}

/// One `MR × NR` block of `c` (its first `mr` rows stored) from the packed strip.
#[inline(always)]
fn tile<const FMA: bool, const MR: usize, const NR: usize>(
    strip: &[f32],
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    mr: usize,
) {
    let mut acc = [[0f32; NR]; MR];
    for (p, s) in strip.chunks_exact(MR).enumerate() {
        let row: &[f32; NR] = b[p * ldb..p * ldb + NR].try_into().expect("NR columns");
        for r in 0..MR {
            let x = s[r];
            for j in 0..NR {
                acc[r][j] = madd::<FMA>(x, row[j], acc[r][j]);
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate().take(mr) {
        for (y, v) in c[r * ldc..r * ldc + NR].iter_mut().zip(acc_row) {
            *y += v;
        }
    }
}

/// The last `w < NR` columns of a strip.
#[inline(always)]
fn edge<const FMA: bool, const MR: usize>(
    strip: &[f32],
    b: &[f32],
    ldb: usize,
    w: usize,
    c: &mut [f32],
    ldc: usize,
    mr: usize,
) {
    for r in 0..mr {
        for j in 0..w {
            let mut acc = 0f32;
            for (p, s) in strip.chunks_exact(MR).enumerate() {
                acc = madd::<FMA>(s[r], b[p * ldb + j], acc);
            }
            c[r * ldc + j] += acc;
        }
    }
}

/// `a · b` into a new row-major matrix.
pub(crate) fn mm(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = Array2::zeros((a.nrows(), b.ncols()));
    matmul_acc(a, b, &mut out);
    out
}

/// Products with at most this many output columns run as dot or axpy loops.
const NARROW: usize = 8;

/// `out += a · b`, `out` row-major.
///
/// Products with at most [`NARROW`] output columns (the heads, and their weight gradients)
/// run as vectorized dot and axpy loops (`matrixmultiply` padded and packed them: a value
/// head's `[256, 64] × [64, 1]` took 15 µs for 16k multiply-adds); the others through
/// [`gemm_acc`], `ndarray`'s `general_mat_mul` only for layouts it
/// does not take.
pub(crate) fn matmul_acc(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, out: &mut ArrayRef2<f32>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    debug_assert_eq!((b.nrows(), out.dim()), (k, (m, n)));
    if n <= NARROW && a.is_standard_layout() {
        // Dot products of a's rows with b's columns.
        let b_t = b.t();
        let bt = b_t.as_standard_layout();
        narrow_dots(
            a.as_slice().expect("standard layout"),
            bt.as_slice().expect("standard layout"),
            k,
            out.as_slice_mut().expect("row-major output"),
        );
    } else if n <= NARROW && a.t().is_standard_layout() {
        // a = cᵀ with c row-major `[k, m]` (a weight gradient `inputᵀ · d`).
        let c = a.t();
        let b = b.as_standard_layout();
        let mut acc = vec![0f32; n * m];
        narrow_axpys(
            c.as_slice().expect("standard layout"),
            b.as_slice().expect("standard layout"),
            m,
            &mut acc,
        );
        let o = out.as_slice_mut().expect("row-major output");
        for (i, row) in o.chunks_exact_mut(n).enumerate() {
            for (j, y) in row.iter_mut().enumerate() {
                *y += acc[j * m + i];
            }
        }
    } else {
        let b = b.as_standard_layout();
        let (rsa, csa) = (a.strides()[0], a.strides()[1]);
        if rsa < 0 || csa < 0 {
            general_mat_mul(1.0, &a, &b, 1.0, out);
            return;
        }
        // Row-major `a` or the transpose of a row-major matrix (a weight gradient's
        // `inputᵀ`): contiguous, with non-negative strides, so its memory-order slice starts
        // at its first element.
        let a_slice = a.to_slice_memory_order();
        match a_slice {
            Some(a_slice) => gemm_acc(
                (m, k, n),
                a_slice,
                (rsa as usize, csa as usize),
                b.as_slice().expect("standard layout"),
                n,
                out.as_slice_mut().expect("row-major output"),
                n,
            ),
            None => general_mat_mul(1.0, &a, &b, 1.0, out),
        }
    }
}

multiversion! {
    /// `out[i, j] += a[i, :] · bt[j, :]` (rows of length `k`; `out` has `bt.len() / k`
    /// columns).
    fn narrow_dots(a: &[f32], bt: &[f32], k: usize, out: &mut [f32]) {
        let n = bt.len() / k;
        for (row, a_row) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (y, b_col) in row.iter_mut().zip(bt.chunks_exact(k)) {
                *y += crate::host::dot(a_row, b_col);
            }
        }
    }
}

multiversion! {
    /// `acc[j, :] += Σ_r b[r, j] · c[r, :]` for `c` row-major `[k, m]`, `b` row-major
    /// `[k, n]`, `acc` row-major `[n, m]`.
    fn narrow_axpys(c: &[f32], b: &[f32], m: usize, acc: &mut [f32]) {
        let n = acc.len() / m;
        for (c_row, b_row) in c.chunks_exact(m).zip(b.chunks_exact(n)) {
            for (acc_row, &s) in acc.chunks_exact_mut(m).zip(b_row) {
                for (y, &x) in acc_row.iter_mut().zip(c_row) {
                    *y += s * x;
                }
            }
        }
    }
}

/// `y[j] += Σ_p x[p] · w[p, j]` for `w` row-major `[x.len(), y.len()]`: a matrix-vector
/// product (one decision through a layer). Blocks of up to 256 outputs (AVX-512; 128 with
/// AVX2) stay in registers while the rows of `w` stream past, so there are no horizontal
/// sums; the last columns go through narrower blocks.
///
/// # Panics
/// When `w.len() != x.len() * y.len()`.
pub(crate) fn gemv_acc(w: &[f32], x: &[f32], y: &mut [f32]) {
    assert_eq!(w.len(), y.len() * x.len(), "w is not [x.len(), y.len()]");
    if x.is_empty() || y.is_empty() {
        return;
    }
    gemv_dispatch(w, x, y);
}

/// [`gemv_acc`] with the weights rounded to bfloat16 and packed by pairs of rows
/// ([`pack_bf16_pairs`]): each weight is widened to the `f32` it stands for exactly (a mask
/// or a shift, no shuffles), then the same products and sums in the same order, so the result
/// is bit for bit `gemv_acc` over the widened weights ([`unpack_bf16_pairs`]). Half the bytes
/// to stream per decision.
///
/// # Panics
/// When `w` is not `x.len().div_ceil(2) * y.len()` long.
pub(crate) fn gemv_acc_bf16(w: &[u32], x: &[f32], y: &mut [f32]) {
    assert_eq!(
        w.len(),
        y.len() * x.len().div_ceil(2),
        "w is not [x.len() / 2 rounded up, y.len()]"
    );
    if x.is_empty() || y.is_empty() {
        return;
    }
    gemv_dispatch_bf16(Bf16Pairs(w), x, y);
}

multiversion! {
    fn gemv_dispatch(w: &[f32], x: &[f32], y: &mut [f32]) => gemv_body
    { avx512: [true, 256, 16], avx2: [true, 128, 8], portable: [false, 32, 4] }
}

multiversion! {
    fn gemv_dispatch_bf16(w: Bf16Pairs<'_>, x: &[f32], y: &mut [f32]) => gemv_body
    { avx512: [true, 256, 16], avx2: [true, 128, 8], portable: [false, 32, 4] }
}

/// `v` rounded to the nearest bfloat16 (ties to even), as its 16 bits: the top half of an
/// `f32` with the same sign and exponent and 8 significant bits. NaN stays a (quiet) NaN,
/// values beyond the largest bfloat16 become infinite.
pub(crate) fn bf16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        return ((b >> 16) | 0x0040) as u16;
    }
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1));
    (rounded >> 16) as u16
}

/// The `f32` that bfloat16 bits stand for (exact).
#[inline(always)]
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// The even row of a packed pair, widened.
#[inline(always)]
fn pair_hi(pair: u32) -> f32 {
    // (compiles to one mask)
    bf16_to_f32((pair >> 16) as u16)
}

/// The odd row of a packed pair, widened.
#[inline(always)]
fn pair_lo(pair: u32) -> f32 {
    // (compiles to one shift)
    bf16_to_f32(pair as u16)
}

/// A row-major `[k, n]` weight rounded to bfloat16 and packed by pairs of rows: element
/// `[q, j]` of the `[k.div_ceil(2), n]` result holds row `2q`'s weight in its high 16 bits
/// and row `2q + 1`'s in its low 16 bits (zero past the last row of an odd `k`). So one
/// 32-bit load gives two weights and widening each is one mask or one shift.
///
/// # Panics
/// When `w.len() != k * n`.
pub(crate) fn pack_bf16_pairs(w: &[f32], k: usize, n: usize) -> Vec<u32> {
    assert_eq!(w.len(), k * n, "w is not [{k}, {n}]");
    let mut out = vec![0u32; k.div_ceil(2) * n];
    for (p, row) in w.chunks_exact(n.max(1)).enumerate().take(k) {
        let shift = if p.is_multiple_of(2) { 16 } else { 0 };
        for (o, &v) in out[p / 2 * n..(p / 2 + 1) * n].iter_mut().zip(row) {
            *o |= u32::from(bf16_bits(v)) << shift;
        }
    }
    out
}

/// The `[k, n]` `f32` weights that [`pack_bf16_pairs`] packed (the rounded values).
pub(crate) fn unpack_bf16_pairs(packed: &[u32], k: usize, n: usize) -> Vec<f32> {
    assert_eq!(packed.len(), k.div_ceil(2) * n, "not a packed [{k}, {n}]");
    (0..k * n)
        .map(|i| Bf16Pairs(packed).at(i / n, i % n, n))
        .collect()
}

/// The weights of a matrix-vector product, row-major `[k, n]`: `f32` slices, or bfloat16
/// pairs of rows ([`Bf16Pairs`]).
trait GemvWeights: Copy {
    /// `w[p, j]` (`n` columns).
    fn at(self, p: usize, j: usize, n: usize) -> f32;

    /// `acc[j] += Σ_p x[p] · w[p, j0 + j]` for `j < W`, over the rows in order.
    fn block<const FMA: bool, const W: usize>(
        self,
        x: &[f32],
        n: usize,
        j0: usize,
        acc: &mut [f32; W],
    );
}

impl GemvWeights for &[f32] {
    #[inline(always)]
    fn at(self, p: usize, j: usize, n: usize) -> f32 {
        self[p * n + j]
    }

    #[inline(always)]
    fn block<const FMA: bool, const W: usize>(
        self,
        x: &[f32],
        n: usize,
        j0: usize,
        acc: &mut [f32; W],
    ) {
        for (p, &xp) in x.iter().enumerate() {
            let row: &[f32; W] = self[p * n + j0..p * n + j0 + W]
                .try_into()
                .expect("W columns");
            for j in 0..W {
                acc[j] = madd::<FMA>(xp, row[j], acc[j]);
            }
        }
    }
}

/// A `[k, n]` weight packed by [`pack_bf16_pairs`] (`[k.div_ceil(2), n]` words).
#[derive(Clone, Copy)]
struct Bf16Pairs<'a>(&'a [u32]);

impl GemvWeights for Bf16Pairs<'_> {
    #[inline(always)]
    fn at(self, p: usize, j: usize, n: usize) -> f32 {
        let pair = self.0[p / 2 * n + j];
        if p.is_multiple_of(2) {
            pair_hi(pair)
        } else {
            pair_lo(pair)
        }
    }

    /// Row `2q`, then row `2q + 1`, from one load of each word.
    #[inline(always)]
    fn block<const FMA: bool, const W: usize>(
        self,
        x: &[f32],
        n: usize,
        j0: usize,
        acc: &mut [f32; W],
    ) {
        let mut rows = x.chunks_exact(2);
        for (q, pair_x) in (&mut rows).enumerate() {
            let row: &[u32; W] = self.0[q * n + j0..q * n + j0 + W]
                .try_into()
                .expect("W columns");
            for j in 0..W {
                acc[j] = madd::<FMA>(pair_x[0], pair_hi(row[j]), acc[j]);
            }
            for j in 0..W {
                acc[j] = madd::<FMA>(pair_x[1], pair_lo(row[j]), acc[j]);
            }
        }
        if let [x_last] = rows.remainder() {
            let q = x.len() / 2;
            let row: &[u32; W] = self.0[q * n + j0..q * n + j0 + W]
                .try_into()
                .expect("W columns");
            for j in 0..W {
                acc[j] = madd::<FMA>(*x_last, pair_hi(row[j]), acc[j]);
            }
        }
    }
}

#[inline(always)]
fn gemv_body<const FMA: bool, const WIDE: usize, const NARROW: usize>(
    w: impl GemvWeights,
    x: &[f32],
    y: &mut [f32],
) {
    let n = y.len();
    let mut j0 = 0;
    while j0 + WIDE <= n {
        gemv_block::<FMA, WIDE>(w, x, n, j0, &mut y[j0..j0 + WIDE]);
        j0 += WIDE;
    }
    while j0 + NARROW <= n {
        gemv_block::<FMA, NARROW>(w, x, n, j0, &mut y[j0..j0 + NARROW]);
        j0 += NARROW;
    }
    for (j, v) in y.iter_mut().enumerate().skip(j0) {
        let mut acc = 0f32;
        for (p, &xp) in x.iter().enumerate() {
            acc = madd::<FMA>(xp, w.at(p, j, n), acc);
        }
        *v += acc;
    }
}

/// Columns `j0..j0 + W` of the product, accumulated in registers over every row of `w`.
#[inline(always)]
fn gemv_block<const FMA: bool, const W: usize>(
    w: impl GemvWeights,
    x: &[f32],
    n: usize,
    j0: usize,
    y: &mut [f32],
) {
    let mut acc = [0f32; W];
    w.block::<FMA, W>(x, n, j0, &mut acc);
    for (v, a) in y.iter_mut().zip(acc) {
        *v += a;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += a[i * rsa + p * csa] as f64 * b[p * ldb + j] as f64;
                }
                c[i * ldc + j] = (c[i * ldc + j] as f64 + s) as f32;
            }
        }
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * 0.9)
            .collect()
    }

    #[test]
    fn matches_a_double_precision_reference_for_every_shape_and_layout() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 64, 768),
            (3, 5, 7),
            (4, 64, 64),
            (7, 33, 65),
            (256, 64, 64),
            (64, 256, 64),
            (13, 4, 40),
            (5, 17, 31),
            (9, 2, 96),
        ] {
            for transposed in [false, true] {
                // `a` stored row-major `[m, k]`, or as the transpose of a row-major `[k, m]`.
                let a = values(m * k, 1);
                let strides = if transposed { (1, m) } else { (k, 1) };
                // `b` with a padded row stride, `c` with a padded row stride and non-zero.
                let (ldb, ldc) = (n + 3, n + 2);
                let b = values(k * ldb, 2);
                let c0 = values(m * ldc, 3);
                let (mut got, mut want) = (c0.clone(), c0.clone());
                gemm_acc((m, k, n), &a, strides, &b, ldb, &mut got, ldc);
                reference((m, k, n), &a, strides, &b, ldb, &mut want, ldc);
                for i in 0..m {
                    for j in 0..ldc {
                        let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                        if j >= n {
                            assert_eq!(g, c0[i * ldc + j], "padding written at ({i}, {j})");
                        } else {
                            let tol = 1e-5 * (1.0 + k as f32);
                            assert!(
                                (g - w).abs() <= tol,
                                "{m}x{k}x{n} transposed={transposed} ({i}, {j}): {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_portable_version_matches_the_dispatched_one() {
        let (m, k, n) = (11, 37, 70);
        let (a, b) = (values(m * k, 4), values(k * n, 5));
        let mut wide = vec![0f32; m * n];
        let mut portable = vec![0f32; m * n];
        gemm_acc((m, k, n), &a, (k, 1), &b, n, &mut wide, n);
        gemm_body::<false, 4, 8>((m, k, n), &a, (k, 1), &b, n, &mut portable, n);
        for (x, y) in wide.iter().zip(&portable) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn matrix_vector_products_match_the_reference() {
        for &(k, n) in &[
            (1, 1),
            (3, 5),
            (64, 4),
            (256, 768),
            (64, 16),
            (33, 7),
            (100, 9),
            (31, 300),
            (5, 290),
        ] {
            let (w, x) = (values(k * n, 6), values(k, 7));
            let y0 = values(n, 8);
            let (mut got, mut want) = (y0.clone(), y0.clone());
            let mut portable = y0.clone();
            gemv_acc(&w, &x, &mut got);
            gemv_body::<false, 32, 4>(w.as_slice(), &x, &mut portable);
            reference((1, k, n), &x, (k, 1), &w, n, &mut want, n);
            for ((g, p), w) in got.iter().zip(&portable).zip(&want) {
                let tol = 1e-5 * (1.0 + k as f32);
                assert!(
                    (g - w).abs() <= tol && (p - w).abs() <= tol,
                    "{k}x{n}: {g} {p} vs {w}"
                );
            }
        }
        gemv_acc(&[], &[], &mut []);
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        assert_eq!(bf16_bits(-2.0), 0xc000);
        assert_eq!(bf16_bits(0.0), 0x0000);
        assert_eq!(bf16_bits(-0.0), 0x8000);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assert_eq!(bf16_bits(1.0 + 2f32.powi(-8)), 0x3f80);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
        assert_eq!(bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        // Just above the half rounds up.
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(bf16_bits(f32::INFINITY), 0x7f80);
        assert_eq!(
            bf16_bits(f32::MAX),
            0x7f80,
            "rounds past the largest bfloat16"
        );
        assert!(f32::from_bits(u32::from(bf16_bits(f32::NAN)) << 16).is_nan());
        // Widening is exact and rounding is within half a unit in the 8th significant bit
        // (relative `2^-8`, the unit roundoff of an 8-bit significand).
        for k in 0..10_000 {
            let v = ((k as f32) * 0.737).sin() * 10f32.powi(k % 9 - 4);
            let back = bf16_to_f32(bf16_bits(v));
            assert!((back - v).abs() <= v.abs() * 2f32.powi(-8), "{v} -> {back}");
            assert_eq!(
                bf16_bits(back),
                bf16_bits(v),
                "bfloat16 values are fixed points"
            );
        }
    }

    #[test]
    fn bf16_products_are_the_products_of_the_widened_weights() {
        for &(k, n) in &[
            (1, 1),
            (2, 3),
            (3, 5),
            (64, 768),
            (256, 768),
            (256, 16),
            (31, 300),
            (7, 290),
        ] {
            let w = values(k * n, 6);
            let packed = pack_bf16_pairs(&w, k, n);
            let wide = unpack_bf16_pairs(&packed, k, n);
            for (a, b) in wide.iter().zip(&w) {
                assert_eq!(a.to_bits(), bf16_to_f32(bf16_bits(*b)).to_bits());
            }
            let x = values(k, 7);
            let y0 = values(n, 8);
            let (mut got, mut want) = (y0.clone(), y0.clone());
            gemv_acc_bf16(&packed, &x, &mut got);
            gemv_acc(&wide, &x, &mut want);
            assert_eq!(got, want, "{k}x{n}");
            let (mut portable, mut portable_f32) = (y0.clone(), y0.clone());
            gemv_body::<false, 32, 4>(Bf16Pairs(&packed), &x, &mut portable);
            gemv_body::<false, 32, 4>(wide.as_slice(), &x, &mut portable_f32);
            assert_eq!(portable, portable_f32, "{k}x{n}, portable");
        }
        gemv_acc_bf16(&[], &[], &mut []);
    }

    #[test]
    fn empty_products_change_nothing() {
        let mut c = vec![1f32; 4];
        gemm_acc((2, 0, 2), &[], (0, 1), &[], 2, &mut c, 2);
        gemm_acc((0, 3, 2), &[], (3, 1), &[0.0; 6], 2, &mut c, 2);
        assert_eq!(c, vec![1.0; 4]);
    }
}
