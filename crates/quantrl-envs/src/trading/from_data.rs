//! Markets from `quantrl-data`: loaded files or the embedded data sets, with their features.

use std::sync::Arc;

use quantrl_core::EnvError;
use quantrl_data::synthetic::PlantedSignalConfig;
use quantrl_data::{
    Date, FeatureConfig, FeatureMatrix, Ohlcv, PricePanel, embedded, featurize_ohlcv,
    featurize_panel,
};

use super::{
    Market, PortfolioActions, PortfolioConfig, PositionActions, SingleAssetConfig, TradingConfig,
};

fn data_err(e: quantrl_data::DataError) -> EnvError {
    EnvError::MarketData {
        field: "data".into(),
        index: None,
        reason: e.to_string(),
    }
}

fn check_rows(features: &FeatureMatrix, rows: usize) -> Result<(), EnvError> {
    if features.n_rows() != rows {
        return Err(EnvError::MarketData {
            field: "features".into(),
            index: None,
            reason: format!("{} feature rows for {rows} price rows", features.n_rows()),
        });
    }
    Ok(())
}

/// A [`Market`] for one OHLCV series: close, open and volume (when the file has it), with the
/// columns of `features` (built from the same series) as observation features.
pub fn market_from_ohlcv(
    ohlcv: &Ohlcv,
    features: &FeatureMatrix,
    ticker: &str,
) -> Result<Market, EnvError> {
    check_rows(features, ohlcv.len())?;
    let mut m = Market::from_close(1, ohlcv.close.clone())?.with_open(ohlcv.open.clone())?;
    if let Some(v) = &ohlcv.volume {
        m = m.with_volume(v.clone())?;
    }
    m.with_features(
        features.names.clone(),
        features.to_f32(),
        features.first_valid_row,
    )?
    .with_asset_names(vec![ticker.to_string()])
}

/// A [`Market`] for a panel of close prices (no open or volume: orders execute at the next
/// close and impact uses the linear fallback rate), with the columns of `features`.
pub fn market_from_panel(panel: &PricePanel, features: &FeatureMatrix) -> Result<Market, EnvError> {
    check_rows(features, panel.n_dates())?;
    Market::from_close(panel.n_assets(), panel.to_row_major())?
        .with_features(
            features.names.clone(),
            features.to_f32(),
            features.first_valid_row,
        )?
        .with_asset_names(panel.tickers.clone())
}

/// The first row whose date is on or after `date` (the number of rows if none is).
pub fn row_of_date(dates: &[Date], date: Date) -> usize {
    dates.partition_point(|d| *d < date)
}

/// The embedded S&P 500 20-stock panel as a [`Market`] with the default features, normalized
/// with statistics of the rows before `train_end` only, and the row where `train_end` falls.
///
/// The default train/validation/test split of quantrl is 1990-2012 / 2013-2016 / 2017-2022.
pub fn sp500_market(train_end: Date) -> Result<(Arc<Market>, usize), EnvError> {
    let panel = embedded::sp500_panel().map_err(data_err)?;
    let features = featurize_panel(&panel, &FeatureConfig::default(), None).map_err(data_err)?;
    let end = row_of_date(&panel.dates, train_end);
    let (scaled, _) = features.normalized(0..end).map_err(data_err)?;
    Ok((Arc::new(market_from_panel(&panel, &scaled)?), end))
}

/// The first day of the default validation span (2013-01-01).
pub fn default_validation_start() -> Date {
    Date::from_ymd(2013, 1, 1).expect("valid date")
}

/// The first day of the default test span (2017-01-01).
pub fn default_test_start() -> Date {
    Date::from_ymd(2017, 1, 1).expect("valid date")
}

/// The embedded S&P 500 20-stock market split by date into training, validation and test
/// rows, with features normalized on the training rows only (see [`sp500_market`]).
#[derive(Debug, Clone)]
pub struct Sp500Split {
    /// The market (all rows).
    pub market: Arc<Market>,
    /// The date of every row.
    pub dates: Vec<Date>,
    /// Training rows: the start of the data up to `validation_start`.
    pub train: std::ops::Range<usize>,
    /// Validation rows: `validation_start` up to `test_start`.
    pub validation: std::ops::Range<usize>,
    /// Test rows: `test_start` to the end of the data.
    pub test: std::ops::Range<usize>,
}

/// Split the embedded S&P 500 market at `validation_start` and `test_start` (quantrl's default
/// split is 1990-2012 / 2013-2016 / 2017-2022: [`default_validation_start`],
/// [`default_test_start`]).
pub fn sp500_split(validation_start: Date, test_start: Date) -> Result<Sp500Split, EnvError> {
    if test_start <= validation_start {
        return Err(EnvError::MarketData {
            field: "split".into(),
            index: None,
            reason: format!(
                "the test span must start after the validation span ({test_start} <= {validation_start})"
            ),
        });
    }
    let (market, train_end) = sp500_market(validation_start)?;
    let dates = embedded::sp500_panel().map_err(data_err)?.dates;
    let test_begin = row_of_date(&dates, test_start);
    let n = dates.len();
    if train_end == 0 || test_begin <= train_end || test_begin >= n {
        return Err(EnvError::MarketData {
            field: "split".into(),
            index: None,
            reason: format!(
                "the data ({} to {}) has no rows in one of the spans split at {validation_start} and {test_start}",
                dates[0],
                dates[n - 1]
            ),
        });
    }
    Ok(Sp500Split {
        market,
        dates,
        train: 0..train_end,
        validation: train_end..test_begin,
        test: test_begin..n,
    })
}

/// The portfolio environment of the registry's `sp500-regimes` on `rows` of the market: the
/// 16 default regimes, default costs, a one-row observation window; training episodes of
/// one year from random starts.
pub fn sp500_regimes_config(num_envs: usize, rows: std::ops::Range<usize>) -> PortfolioConfig {
    PortfolioConfig {
        trading: TradingConfig {
            num_envs,
            window: 1,
            span_start: Some(rows.start),
            span_end: Some(rows.end),
            ..Default::default()
        },
        actions: PortfolioActions::Regimes { allocations: None },
    }
}

/// The embedded GOOGL daily bars as a one-asset [`Market`] (close, open, volume) with the
/// default features normalized on the training span only, and that span: the first 80% of
/// the rows (the rest is left for out-of-sample tests).
pub fn googl_market() -> Result<(Arc<Market>, std::ops::Range<usize>), EnvError> {
    let bars = embedded::googl().map_err(data_err)?;
    let features = featurize_ohlcv(&bars, &FeatureConfig::default(), None).map_err(data_err)?;
    let train = 0..bars.len() * 4 / 5;
    let (scaled, _) = features.normalized(train.clone()).map_err(data_err)?;
    Ok((Arc::new(market_from_ohlcv(&bars, &scaled, "GOOGL")?), train))
}

/// The planted-signal market of the registry's `synthetic-signal`: 5000 steps of
/// [`PlantedSignalConfig::default`] (a persistent AR(1) signal, `phi = 0.9`, observed with
/// noise, loading `beta = 0.002` on the next return) drawn with `seed`, one asset `SYN` whose
/// only feature is the noisy observation `o_t` of the signal (known at row `t`), and the
/// training span: the first 80% of the rows.
pub fn planted_signal_market(seed: u64) -> Result<(Arc<Market>, std::ops::Range<usize>), EnvError> {
    let config = PlantedSignalConfig {
        n_steps: 5000,
        ..PlantedSignalConfig::default()
    };
    let path = config.generate(seed).map_err(data_err)?;
    // Row t: price t and the observation made at t (the last price has no observation).
    let n = path.observed.len();
    let market = Market::from_close(1, path.path.prices[..n].to_vec())?
        .with_features(
            vec!["observed_signal".into()],
            path.observed.iter().map(|&o| o as f32).collect(),
            0,
        )?
        .with_asset_names(vec!["SYN".into()])?;
    Ok((Arc::new(market), 0..n * 4 / 5))
}

/// A single-asset environment on `rows` of a market: short, flat or long the whole NAV,
/// default costs, a one-row observation window, one-year episodes from random starts.
pub fn long_short_config(num_envs: usize, rows: std::ops::Range<usize>) -> SingleAssetConfig {
    SingleAssetConfig {
        trading: TradingConfig {
            num_envs,
            window: 1,
            span_start: Some(rows.start),
            span_end: Some(rows.end),
            ..Default::default()
        },
        actions: PositionActions::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_sp500_becomes_a_market() {
        let (m, end) = sp500_market(default_validation_start()).unwrap();
        assert_eq!(m.n_assets(), 20);
        assert!(m.n_features() > 20);
        assert!(end > 5000 && end < m.n_steps());
        assert!(m.first_valid() < 100);
    }

    #[test]
    fn googl_and_planted_signal_markets_are_causal_splits() {
        let (m, train) = googl_market().unwrap();
        assert_eq!(m.n_assets(), 1);
        assert!(train.end > 1000 && train.end < m.n_steps());
        let (m, train) = planted_signal_market(7).unwrap();
        assert_eq!((m.n_assets(), m.n_features(), m.n_steps()), (1, 1, 5000));
        assert_eq!(train, 0..4000);
        let (again, _) = planted_signal_market(7).unwrap();
        assert_eq!(m.close_all(), again.close_all(), "seeded");
    }

    #[test]
    fn mismatched_features_are_refused() {
        let panel = embedded::sp500_panel().unwrap();
        let mut f = featurize_panel(&panel, &FeatureConfig::default(), None).unwrap();
        f.dates.pop();
        let e = market_from_panel(&panel, &f).unwrap_err();
        assert!(e.to_string().contains("feature rows"), "{e}");
    }
}
