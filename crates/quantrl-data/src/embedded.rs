//! Real market data shipped inside the crate, loaded with one call.
//!
//! The files (about 650 kB together) are compiled in with `include_bytes!` and parsed by the
//! same loaders as any file, so they go through the same validation. Provenance and licences:
//! `data/README.md` in this crate (gym-anytrading 2.0.0, MIT; skfolio 1.12.2, BSD-3-Clause).
//!
//! ```
//! let googl = quantrl_data::embedded::googl()?;
//! assert_eq!(googl.len(), 2335);
//! let panel = quantrl_data::embedded::sp500_panel()?;
//! let index = quantrl_data::embedded::sp500_index()?;
//! assert_eq!((panel.n_dates(), panel.n_assets()), (8313, 20));
//! assert_eq!(index.dates, panel.dates);
//! # Ok::<(), quantrl_data::DataError>(())
//! ```

use crate::load::{LoadOptions, load_ohlcv_from_bytes, load_panel_from_bytes};
use crate::{DataError, Ohlcv, PricePanel};

/// `STOCKS_GOOGL.csv` from gym-anytrading 2.0.0 (MIT): Alphabet class A daily OHLCV,
/// 2009-05-22 to 2018-08-29, 2335 rows, CRLF line endings.
pub const GOOGL_CSV: &[u8] = include_bytes!("../data/STOCKS_GOOGL.csv");

/// `sp500_dataset.csv.gz` from skfolio 1.12.2 (BSD-3-Clause): adjusted daily closes of 20
/// S&P 500 stocks, 1990-01-02 to 2022-12-28, 8313 rows.
pub const SP500_DATASET_CSV_GZ: &[u8] = include_bytes!("../data/sp500_dataset.csv.gz");

/// `sp500_index.csv.gz` from skfolio 1.12.2 (BSD-3-Clause): the S&P 500 index (column
/// `SP500`) on the same 8313 dates as [`SP500_DATASET_CSV_GZ`].
pub const SP500_INDEX_CSV_GZ: &[u8] = include_bytes!("../data/sp500_index.csv.gz");

/// Alphabet (GOOGL) daily bars with volume; `close` is the `Close` column (equal to
/// `Adj Close` in this file). The data of gym-anytrading's `stocks-v0`.
pub fn googl() -> Result<Ohlcv, DataError> {
    load_ohlcv_from_bytes(GOOGL_CSV, "STOCKS_GOOGL.csv", &LoadOptions::default())
}

/// The 20-stock panel (AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK MSFT PEP PFE PG RRC UNH
/// WMT XOM), adjusted closes.
pub fn sp500_panel() -> Result<PricePanel, DataError> {
    load_panel_from_bytes(
        SP500_DATASET_CSV_GZ,
        "sp500_dataset.csv.gz",
        &LoadOptions::default(),
    )
}

/// The S&P 500 index as a one-column panel (ticker `SP500`), on the dates of
/// [`sp500_panel`].
pub fn sp500_index() -> Result<PricePanel, DataError> {
    load_panel_from_bytes(
        SP500_INDEX_CSV_GZ,
        "sp500_index.csv.gz",
        &LoadOptions::default(),
    )
}
