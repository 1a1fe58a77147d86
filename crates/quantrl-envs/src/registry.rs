//! Build environments by name (for configs and the command line).

use quantrl_core::{EnvError, VecEnv};

use crate::{CartPole, CartPoleConfig, MaskedIdentity, MaskedIdentityConfig, trading};

/// Names [`make_env`] knows.
pub const ENV_NAMES: &[&str] = &[
    "cartpole",
    "cartpole-novel",
    "invalid-action-discrete",
    "sp500-regimes",
    "googl",
    "synthetic-signal",
];

/// The seed of the `synthetic-signal` market (fixed: the name means one market).
pub const SYNTHETIC_SIGNAL_SEED: u64 = 7;

/// Build `num_envs` environments of the named kind, seeded with `seed`.
///
/// Names are case-insensitive; `CartPole-v1` and `cartpole` are the same. `sp500-regimes` is
/// a [`PortfolioEnv`](crate::trading::PortfolioEnv) choosing among the 16 default regimes on
/// the embedded S&P 500 20-stock panel's training span (1990-2012, features normalized on
/// it), with default costs and one-year episodes. `googl` is a
/// [`SingleAssetEnv`](crate::trading::SingleAssetEnv) going short, flat or long on the
/// embedded GOOGL bars (training span: the first 80% of rows, features normalized on it);
/// `synthetic-signal` the same on a seeded planted-signal market whose only feature is a
/// noisy observation of a persistent signal that predicts returns (a policy can learn it).
///
/// ```
/// let env = quantrl_envs::make_env("cartpole", 8).unwrap();
/// assert_eq!(env.num_envs(), 8);
/// assert!(quantrl_envs::make_env("pong", 8).is_err());
/// ```
pub fn make_env(name: &str, num_envs: usize) -> Result<Box<dyn VecEnv + Send>, EnvError> {
    let key = name.to_ascii_lowercase();
    match key.as_str() {
        "cartpole" | "cartpole-v1" => Ok(Box::new(CartPole::new(CartPoleConfig {
            num_envs,
            ..Default::default()
        }))),
        "cartpole-novel" | "cartpolenovel" | "cartpolenovel-v1" => {
            Ok(Box::new(CartPole::new(CartPoleConfig {
                num_envs,
                hide_velocity: true,
                ..Default::default()
            })))
        }
        "invalid-action-discrete" | "invalidactionenvdiscrete" => {
            Ok(Box::new(MaskedIdentity::new(MaskedIdentityConfig {
                num_envs,
                ..Default::default()
            })?))
        }
        "sp500-regimes" => {
            // The embedded S&P 500 panel, training span 1990-2012, 16 portfolio regimes,
            // default costs, one-year episodes.
            let split = trading::sp500_split(
                trading::default_validation_start(),
                trading::default_test_start(),
            )?;
            Ok(Box::new(trading::PortfolioEnv::new(
                split.market,
                trading::sp500_regimes_config(num_envs, split.train),
            )?))
        }
        "googl" => {
            let (market, train) = trading::googl_market()?;
            Ok(Box::new(trading::SingleAssetEnv::new(
                market,
                trading::long_short_config(num_envs, train),
            )?))
        }
        "synthetic-signal" => {
            let (market, train) = trading::planted_signal_market(SYNTHETIC_SIGNAL_SEED)?;
            Ok(Box::new(trading::SingleAssetEnv::new(
                market,
                trading::long_short_config(num_envs, train),
            )?))
        }
        _ => Err(EnvError::UnknownEnv {
            name: name.to_string(),
            known: ENV_NAMES.join(", "),
        }),
    }
}
