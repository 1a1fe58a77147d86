//! Backtest a stand-in agent against the baselines on the embedded S&P 500 stocks,
//! 2017-2022, with a calendar walk-forward, and save the report and plots.
//!
//! ```text
//! cargo run -p quantrl-eval --example sp500_baselines -- OUT_DIR
//! ```
//!
//! The "agent" picks a random allowed portfolio regime every 21 bars from a seeded
//! generator: it stands in for a trained policy, which implements the same
//! `BacktestPolicy` trait.

use std::error::Error;
use std::path::PathBuf;

use quantrl_core::Rng;
use quantrl_data::{Date, embedded};
use quantrl_envs::trading::{
    PortfolioActions, PortfolioConfig, TradingConfig, row_of_date, sp500_market,
};
use quantrl_eval::{
    BacktestPolicy, Backtester, BaselineConfig, EnvSpec, EvalError, IndexSeries, PolicyActions,
    Report, RunManifest, WalkForward, calendar_windows, format_table, market_hash, plots, report,
    standard_set,
};

/// A random allowed regime, held for 21 bars.
struct RandomRegimes {
    label: String,
    rng: Rng,
    seed: u64,
    step: usize,
    current: u32,
}

impl RandomRegimes {
    fn new(seed: u64) -> Self {
        Self {
            label: format!("random regimes (seed {seed})"),
            rng: Rng::seed_from_u64(seed),
            seed,
            step: 0,
            current: 0,
        }
    }
}

impl BacktestPolicy for RandomRegimes {
    fn label(&self) -> &str {
        &self.label
    }

    fn reset(&mut self, _n_envs: usize) {
        self.rng = Rng::seed_from_u64(self.seed);
        self.step = 0;
        self.current = 0;
    }

    fn act(
        &mut self,
        _obs: &[f32],
        masks: Option<&[bool]>,
        _episode_start: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        let masks = masks.expect("regimes are discrete, with masks");
        if self.step.is_multiple_of(21) {
            let allowed: Vec<u32> = (0..masks.len() as u32)
                .filter(|&k| masks[k as usize])
                .collect();
            self.current = allowed[self.rng.below(allowed.len() as u64) as usize];
        }
        if !masks[self.current as usize] {
            self.current = 0;
        }
        self.step += 1;
        out.discrete_mut().expect("discrete actions")[0] = self.current;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "sp500-baselines".into()),
    );
    let test_start = Date::from_ymd(2017, 1, 1)?;
    // Features normalized with statistics of the rows before 2017 only.
    let (market, _) = sp500_market(test_start)?;
    let dates = embedded::sp500_panel()?.dates;
    let start = row_of_date(&dates, test_start);
    let trading = TradingConfig {
        window: 10,
        initial_nav: 1_000_000.0,
        span_start: Some(start),
        ..TradingConfig::default()
    };
    let spec = EnvSpec::Portfolio(PortfolioConfig {
        trading,
        actions: PortfolioActions::Regimes { allocations: None },
    });
    let backtester = Backtester::new(market.clone(), spec)?.with_dates(dates.clone())?;

    let agent = backtester.run(&mut RandomRegimes::new(0))?;
    let config = BaselineConfig {
        index: Some(IndexSeries::sp500()?),
        ..BaselineConfig::default()
    };
    let mut results = vec![agent];
    results.extend(standard_set(&backtester, &config)?);

    // Walk-forward over 2015-2022: train on a calendar year, test on the next.
    let from_2015 = row_of_date(&dates, Date::from_ymd(2015, 1, 1)?);
    let windows: Vec<_> = calendar_windows(&dates[from_2015..], 12, 12)?
        .into_iter()
        .map(|mut w| {
            w.train = w.train.start + from_2015..w.train.end + from_2015;
            w.test = w.test.start + from_2015..w.test.end + from_2015;
            w
        })
        .collect();
    let seeds = vec![0, 1, 2];
    let walk = WalkForward {
        baselines: Some(BaselineConfig::default()),
        ..WalkForward::new(windows, seeds.clone())
    }
    .run(&backtester, |_window, seed| {
        Ok::<_, EvalError>(RandomRegimes::new(seed))
    })?;

    let manifest = RunManifest::new(
        serde_json::json!({"market": "embedded S&P 500, 20 stocks", "test_start": "2017-01-01",
                           "actions": "default regimes", "window": 10}),
        market_hash(&market),
        seeds,
    );
    let report = Report::new(manifest, results, Some("S&P 500 index"))?.with_walk_forward(walk);
    print!("{}", format_table(&report.metrics));
    let files = report::write_all(&out, &report)?;
    let pngs = plots::write_all(&out, &report)?;
    println!(
        "wrote {} files and {} plots to {}",
        files.len(),
        pngs.len(),
        out.display()
    );
    Ok(())
}
