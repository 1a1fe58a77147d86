//! Deterministic host-side initialization (the same weights on every backend).

use quantrl_core::Rng;

/// A `rows x cols` (row-major) semi-orthogonal matrix scaled by `gain`, as PyTorch's
/// `nn.init.orthogonal_` (QR of a Gaussian matrix with the signs of `R`'s diagonal folded
/// in), drawn from `rng` on the host in float64.
///
/// Rows are orthonormal when `rows <= cols`, columns when `rows > cols`.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut Rng) -> Vec<f32> {
    // Work on a tall matrix (m >= n) and transpose back if needed.
    let (m, n, transpose) = if rows >= cols {
        (rows, cols, false)
    } else {
        (cols, rows, true)
    };
    let mut a: Vec<f64> = (0..m * n).map(|_| rng.normal()).collect(); // column j: a[i*n + j]
    // Modified Gram-Schmidt on the columns gives Q with R's diagonal positive, which is the
    // sign convention PyTorch applies after its QR.
    for j in 0..n {
        for k in 0..j {
            let dot: f64 = (0..m).map(|i| a[i * n + j] * a[i * n + k]).sum();
            for i in 0..m {
                a[i * n + j] -= dot * a[i * n + k];
            }
        }
        let norm = (0..m)
            .map(|i| a[i * n + j] * a[i * n + j])
            .sum::<f64>()
            .sqrt()
            .max(1e-300);
        for i in 0..m {
            a[i * n + j] /= norm;
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if transpose {
                a[c * n + r]
            } else {
                a[r * n + c]
            };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_or_columns_are_orthonormal() {
        let mut rng = Rng::seed_from_u64(0);
        for (r, c) in [(4, 64), (64, 64), (64, 2), (3, 3)] {
            let w = orthogonal(r, c, 1.0, &mut rng);
            let (outer, inner, stride_o, stride_i) =
                if r <= c { (r, c, c, 1) } else { (c, r, 1, c) };
            for p in 0..outer {
                for q in 0..outer {
                    let dot: f64 = (0..inner)
                        .map(|k| {
                            w[p * stride_o + k * stride_i] as f64
                                * w[q * stride_o + k * stride_i] as f64
                        })
                        .sum();
                    let want = if p == q { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{r}x{c}: <{p},{q}> = {dot}");
                }
            }
        }
    }
}
