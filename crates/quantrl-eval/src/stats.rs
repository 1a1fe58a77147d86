//! Plain sample statistics over validated (non-empty, finite) slices.

/// Arithmetic mean.
pub(crate) fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (ddof = 1); NaN for fewer than 2 values.
pub(crate) fn sample_std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - 1) as f64).sqrt()
}

/// The sample standard deviation, set to exactly 0 when all values are equal.
///
/// A constant series has a computed std of a few ulps (the mean is rounded); empyrical-reloaded
/// sets it to 0 so that the Sharpe ratio of a constant series is +/-Infinity or NaN rather than
/// a huge finite number.
pub(crate) fn zero_dispersion_std(x: &[f64]) -> f64 {
    if x.len() >= 2 && x.iter().all(|&v| v == x[0]) {
        0.0
    } else {
        sample_std(x)
    }
}

/// Central moments m2, m3, m4 (population: divided by n).
pub(crate) fn central_moments(x: &[f64]) -> (f64, f64, f64) {
    let m = mean(x);
    let n = x.len() as f64;
    let (mut s2, mut s3, mut s4) = (0.0, 0.0, 0.0);
    for &v in x {
        let d = v - m;
        let d2 = d * d;
        s2 += d2;
        s3 += d2 * d;
        s4 += d2 * d2;
    }
    (s2 / n, s3 / n, s4 / n)
}
