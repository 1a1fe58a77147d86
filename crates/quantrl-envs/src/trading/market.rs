//! The market a trading environment replays: prices, optional volume, precomputed features.

use quantrl_core::EnvError;

/// Rows of the rolling windows used for the impact model's volatility and average volume.
pub const DEFAULT_ESTIMATION_WINDOW: usize = 20;

/// Prices and features of `n_assets` assets over `n_steps` bars, as plain row-major arrays.
///
/// Built once (typically from `quantrl-data`'s loaders and feature pipeline) and shared by
/// every environment through an `Arc`. Row `t` of every series describes bar `t`; the
/// environment's observation at `t` reads rows `<= t` only.
///
/// Besides what it is given, a market precomputes two causal series for the impact model:
/// the rolling standard deviation of close-to-close log returns (`sigma`) and, where volume
/// exists, the rolling mean volume (`adv`), both over [`DEFAULT_ESTIMATION_WINDOW`] rows
/// ending at `t` (fewer at the start of the data).
#[derive(Debug, Clone, PartialEq)]
pub struct Market {
    n_steps: usize,
    n_assets: usize,
    close: Vec<f64>,
    open: Option<Vec<f64>>,
    volume: Option<Vec<f64>>,
    features: Vec<f32>,
    n_features: usize,
    feature_names: Vec<String>,
    tradable: Option<Vec<bool>>,
    first_valid: usize,
    sigma: Vec<f64>,
    adv: Option<Vec<f64>>,
    asset_names: Vec<String>,
    regimes: Option<Vec<usize>>,
}

fn bad(field: &str, index: Option<usize>, reason: impl Into<String>) -> EnvError {
    EnvError::MarketData {
        field: field.to_string(),
        index,
        reason: reason.into(),
    }
}

fn check_prices(field: &str, values: &[f64], n_assets: usize) -> Result<(), EnvError> {
    if let Some(k) = values.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
        return Err(bad(
            field,
            Some(k / n_assets),
            format!(
                "price {} of asset {} is not finite and positive",
                values[k],
                k % n_assets
            ),
        ));
    }
    Ok(())
}

impl Market {
    /// A market from close prices, `[n_steps * n_assets]` row-major (row = bar).
    ///
    /// With no features given, the observation window holds nothing but the account state;
    /// add features with [`Market::with_features`].
    pub fn from_close(n_assets: usize, close: Vec<f64>) -> Result<Self, EnvError> {
        if n_assets == 0 {
            return Err(bad("close", None, "a market needs at least one asset"));
        }
        if close.is_empty() || !close.len().is_multiple_of(n_assets) {
            return Err(bad(
                "close",
                None,
                format!(
                    "{} values is not a whole number of rows of {n_assets} assets",
                    close.len()
                ),
            ));
        }
        let n_steps = close.len() / n_assets;
        if n_steps < 2 {
            return Err(bad("close", None, "a market needs at least two bars"));
        }
        check_prices("close", &close, n_assets)?;
        let mut m = Self {
            n_steps,
            n_assets,
            close,
            open: None,
            volume: None,
            features: Vec::new(),
            n_features: 0,
            feature_names: Vec::new(),
            tradable: None,
            first_valid: 0,
            sigma: Vec::new(),
            adv: None,
            asset_names: (0..n_assets).map(|a| format!("asset{a}")).collect(),
            regimes: None,
        };
        m.sigma = m.rolling_sigma(DEFAULT_ESTIMATION_WINDOW);
        Ok(m)
    }

    fn check_len(&self, field: &str, len: usize, per_row: usize) -> Result<(), EnvError> {
        if len != self.n_steps * per_row {
            return Err(bad(
                field,
                None,
                format!(
                    "has {len} values, expected {} ({} rows x {per_row})",
                    self.n_steps * per_row,
                    self.n_steps
                ),
            ));
        }
        Ok(())
    }

    /// Add open prices (same layout as close), making [`ExecutionPrice::NextOpen`]
    /// available.
    ///
    /// [`ExecutionPrice::NextOpen`]: crate::trading::ExecutionPrice::NextOpen
    pub fn with_open(mut self, open: Vec<f64>) -> Result<Self, EnvError> {
        self.check_len("open", open.len(), self.n_assets)?;
        check_prices("open", &open, self.n_assets)?;
        self.open = Some(open);
        Ok(self)
    }

    /// Add traded volume in shares (same layout as close), enabling the square-root impact
    /// model. Zero volume is allowed (the fallback rate applies on such bars).
    pub fn with_volume(mut self, volume: Vec<f64>) -> Result<Self, EnvError> {
        self.check_len("volume", volume.len(), self.n_assets)?;
        if let Some(k) = volume.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(bad(
                "volume",
                Some(k / self.n_assets),
                format!("volume {} is not finite and >= 0", volume[k]),
            ));
        }
        let w = DEFAULT_ESTIMATION_WINDOW;
        let n = self.n_assets;
        let mut adv = vec![0.0; volume.len()];
        for a in 0..n {
            let mut sum = 0.0;
            for t in 0..self.n_steps {
                sum += volume[t * n + a];
                if t >= w {
                    sum -= volume[(t - w) * n + a];
                }
                adv[t * n + a] = sum / (t + 1).min(w) as f64;
            }
        }
        self.volume = Some(volume);
        self.adv = Some(adv);
        Ok(self)
    }

    /// Add features, `[n_steps * n_features]` row-major, with one name per column.
    ///
    /// `first_valid` is the first row where every feature is defined (indicators need a
    /// warm-up); episodes never observe rows before it. Values at rows `>= first_valid` must
    /// be finite.
    pub fn with_features(
        mut self,
        names: Vec<String>,
        features: Vec<f32>,
        first_valid: usize,
    ) -> Result<Self, EnvError> {
        let f = names.len();
        self.check_len("features", features.len(), f)?;
        if first_valid >= self.n_steps {
            return Err(bad(
                "features",
                None,
                format!(
                    "first valid row {first_valid} is past the data ({} rows)",
                    self.n_steps
                ),
            ));
        }
        if f > 0
            && let Some(k) = features[first_valid * f..]
                .iter()
                .position(|v| !v.is_finite())
        {
            let k = k + first_valid * f;
            return Err(bad(
                &format!("features.{}", names[k % f]),
                Some(k / f),
                format!("value {} is not finite", features[k]),
            ));
        }
        self.features = features;
        self.n_features = f;
        self.feature_names = names;
        self.first_valid = first_valid;
        Ok(self)
    }

    /// Mark the bars on which trading is allowed (`[n_steps]`); an order that would execute
    /// on a bar marked `false` (an intraday no-trade window, a halt) is not placed.
    pub fn with_tradable(mut self, tradable: Vec<bool>) -> Result<Self, EnvError> {
        self.check_len("tradable", tradable.len(), 1)?;
        self.tradable = Some(tradable);
        Ok(self)
    }

    /// Label every bar with a regime (`[n_steps]`, e.g. `quantrl-data`'s volatility regimes
    /// or a synthetic market's generating regime). The environment reports the label of the
    /// bar each copy observes ([`VecEnv::regime_label`](quantrl_core::VecEnv::regime_label)),
    /// which an IRM penalty groups samples by. The labels are not part of the observation.
    pub fn with_regimes(mut self, regimes: Vec<usize>) -> Result<Self, EnvError> {
        self.check_len("regimes", regimes.len(), 1)?;
        self.regimes = Some(regimes);
        Ok(self)
    }

    /// The regime label of bar `t`, when the market has labels.
    #[inline]
    pub fn regime(&self, t: usize) -> Option<usize> {
        self.regimes.as_ref().map(|r| r[t])
    }

    /// Name the assets (for reports); defaults are `asset0`, `asset1`, ...
    pub fn with_asset_names(mut self, names: Vec<String>) -> Result<Self, EnvError> {
        if names.len() != self.n_assets {
            return Err(bad(
                "asset_names",
                None,
                format!("{} names for {} assets", names.len(), self.n_assets),
            ));
        }
        self.asset_names = names;
        Ok(self)
    }

    fn rolling_sigma(&self, w: usize) -> Vec<f64> {
        let n = self.n_assets;
        let mut sigma = vec![0.0; self.close.len()];
        for a in 0..n {
            let (mut s1, mut s2) = (0.0, 0.0);
            for t in 1..self.n_steps {
                let r = (self.close[t * n + a] / self.close[(t - 1) * n + a]).ln();
                s1 += r;
                s2 += r * r;
                if t > w {
                    let r0 = (self.close[(t - w) * n + a] / self.close[(t - w - 1) * n + a]).ln();
                    s1 -= r0;
                    s2 -= r0 * r0;
                }
                let k = t.min(w) as f64;
                let var = if k > 1.0 {
                    ((s2 - s1 * s1 / k) / (k - 1.0)).max(0.0)
                } else {
                    0.0
                };
                sigma[t * n + a] = var.sqrt();
            }
        }
        sigma
    }

    /// Number of bars.
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }
    /// Number of assets.
    pub fn n_assets(&self) -> usize {
        self.n_assets
    }
    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// Feature column names.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
    /// Asset names.
    pub fn asset_names(&self) -> &[String] {
        &self.asset_names
    }
    /// First row where every feature is defined.
    pub fn first_valid(&self) -> usize {
        self.first_valid
    }
    /// Whether open prices are present.
    pub fn has_open(&self) -> bool {
        self.open.is_some()
    }
    /// Whether some bars are marked as not tradable.
    pub fn has_tradable(&self) -> bool {
        self.tradable.is_some()
    }
    /// Whether volume is present.
    pub fn has_volume(&self) -> bool {
        self.volume.is_some()
    }
    /// Close prices of bar `t`, one per asset.
    #[inline]
    pub fn close(&self, t: usize) -> &[f64] {
        &self.close[t * self.n_assets..(t + 1) * self.n_assets]
    }
    /// Open prices of bar `t` (the close where no open was given).
    #[inline]
    pub fn open(&self, t: usize) -> &[f64] {
        let o = self.open.as_deref().unwrap_or(&self.close);
        &o[t * self.n_assets..(t + 1) * self.n_assets]
    }
    /// Features of rows `t + 1 - window ..= t`, contiguous.
    #[inline]
    pub fn feature_window(&self, t: usize, window: usize) -> &[f32] {
        let f = self.n_features;
        &self.features[(t + 1 - window) * f..(t + 1) * f]
    }
    /// Whether bar `t` accepts orders.
    #[inline]
    pub fn tradable(&self, t: usize) -> bool {
        self.tradable.as_ref().is_none_or(|v| v[t])
    }
    /// Rolling standard deviation of daily log returns of each asset, at bar `t`.
    #[inline]
    pub fn sigma(&self, t: usize) -> &[f64] {
        &self.sigma[t * self.n_assets..(t + 1) * self.n_assets]
    }
    /// Rolling mean volume of each asset at bar `t`, where volume exists.
    #[inline]
    pub fn adv(&self, t: usize) -> Option<&[f64]> {
        self.adv
            .as_ref()
            .map(|v| &v[t * self.n_assets..(t + 1) * self.n_assets])
    }
    /// All close prices, row-major.
    pub fn close_all(&self) -> &[f64] {
        &self.close
    }
    /// All open prices, row-major (the close prices where no open was given).
    pub(crate) fn open_all(&self) -> &[f64] {
        self.open.as_deref().unwrap_or(&self.close)
    }
    /// All features, row-major (`n_features` per row).
    pub(crate) fn features_all(&self) -> &[f32] {
        &self.features
    }
    /// All rolling standard deviations ([`Market::sigma`]), row-major.
    pub(crate) fn sigma_all(&self) -> &[f64] {
        &self.sigma
    }
    /// All rolling mean volumes ([`Market::adv`]), row-major, where volume exists.
    pub(crate) fn adv_all(&self) -> Option<&[f64]> {
        self.adv.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_prices_and_lengths() {
        let e = Market::from_close(2, vec![1.0, 2.0, 3.0]).unwrap_err();
        assert!(e.to_string().contains("whole number of rows"), "{e}");
        let e = Market::from_close(1, vec![1.0, f64::NAN, 2.0]).unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        let e = Market::from_close(1, vec![1.0, 0.0]).unwrap_err();
        assert!(e.to_string().contains("not finite and positive"), "{e}");
        let m = Market::from_close(1, vec![1.0, 2.0, 3.0]).unwrap();
        let e = m.clone().with_open(vec![1.0]).unwrap_err();
        assert!(e.to_string().contains("expected 3"), "{e}");
        let e = m.clone().with_volume(vec![1.0, -1.0, 1.0]).unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        let e = m
            .clone()
            .with_features(vec!["x".into()], vec![f32::NAN, 1.0, f32::INFINITY], 1)
            .unwrap_err();
        assert!(e.to_string().contains("features.x at row 2"), "{e}");
        // Warm-up rows before first_valid may hold NaN.
        m.with_features(vec!["x".into()], vec![f32::NAN, 1.0, 2.0], 1)
            .unwrap();
    }

    #[test]
    fn rolling_estimates_are_causal() {
        let close: Vec<f64> = (0..50)
            .map(|t| 100.0 * (1.0 + 0.01 * (t as f64).sin()))
            .collect();
        let vol: Vec<f64> = (0..50).map(|t| 1000.0 + t as f64).collect();
        let a = Market::from_close(1, close.clone())
            .unwrap()
            .with_volume(vol.clone())
            .unwrap();
        let mut close2 = close;
        close2[30] *= 2.0;
        let mut vol2 = vol;
        vol2[30] = 0.0;
        let b = Market::from_close(1, close2)
            .unwrap()
            .with_volume(vol2)
            .unwrap();
        for t in 0..30 {
            assert_eq!(a.sigma(t), b.sigma(t));
            assert_eq!(a.adv(t), b.adv(t));
        }
        assert_ne!(a.sigma(30), b.sigma(30));
        assert_eq!(a.adv(0).unwrap()[0], 1000.0);
        assert_eq!(a.adv(1).unwrap()[0], 1000.5);
    }
}
