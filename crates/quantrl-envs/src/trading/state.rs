//! The trading engine's per-environment state, kept field by field (one array per field, a
//! "struct of arrays") so that a step's passes over environments load and store whole vectors
//! of environments at once instead of gathering each environment's record.

use serde::{Deserialize, Serialize};

use super::env::StepInfo;

/// One environment's account and episode state: the unit of a saved state and of the
/// per-environment (general) step path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Account {
    pub t: usize,
    pub last_t: usize,
    pub steps: usize,
    pub cash: f64,
    pub nav: f64,
    pub peak: f64,
    pub ew_var: f64,
    pub log_nav: f64,
    pub drawdown: f64,
    pub dsr_a: f64,
    pub dsr_b: f64,
    pub level: u32,
}

/// Declares a struct of arrays with one `Vec` per field of a record type, and the conversions
/// of one element to and from the record.
macro_rules! soa {
    (
        $(#[$m:meta])* struct $name:ident of $record:ident {
            $($field:ident: $ty:ty $(=> $path:ident)?),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name {
            $(pub $field: Vec<$ty>,)*
        }

        impl $name {
            /// `n` copies of `value`.
            pub fn new(n: usize, value: $record) -> Self {
                Self { $($field: vec![soa!(@get value, $field $(, $path)?); n],)* }
            }

            /// Environment `i`'s record.
            #[inline(always)]
            pub fn get(&self, i: usize) -> $record {
                let mut value = $record::default();
                $(soa!(@set value, $field $(, $path)?) = self.$field[i];)*
                value
            }

            /// Set environment `i`'s record.
            #[inline(always)]
            pub fn set(&mut self, i: usize, value: $record) {
                $(self.$field[i] = soa!(@get value, $field $(, $path)?);)*
            }
        }
    };
    (@get $v:ident, $field:ident) => { $v.$field };
    (@get $v:ident, $field:ident, $path:ident) => { $v.$path.$field };
    (@set $v:ident, $field:ident) => { $v.$field };
    (@set $v:ident, $field:ident, $path:ident) => { $v.$path.$field };
}

impl Default for Account {
    fn default() -> Self {
        Self {
            t: 0,
            last_t: 0,
            steps: 0,
            cash: 0.0,
            nav: 0.0,
            peak: 0.0,
            ew_var: 0.0,
            log_nav: 0.0,
            drawdown: 0.0,
            dsr_a: 0.0,
            dsr_b: 0.0,
            level: 0,
        }
    }
}

soa! {
    /// Every environment's [`Account`], field by field.
    struct Accounts of Account {
        t: usize,
        last_t: usize,
        steps: usize,
        cash: f64,
        nav: f64,
        peak: f64,
        ew_var: f64,
        log_nav: f64,
        drawdown: f64,
        dsr_a: f64,
        dsr_b: f64,
        level: u32,
    }
}

soa! {
    /// Every environment's last [`StepInfo`], field by field (the cost components as their
    /// own arrays).
    struct Infos of StepInfo {
        t: usize,
        nav: f64,
        cash: f64,
        traded_notional: f64,
        turnover: f64,
        fee: f64 => costs,
        spread: f64 => costs,
        impact: f64 => costs,
        slippage: f64 => costs,
        borrow: f64 => costs,
        financing: f64 => costs,
        gross_exposure: f64,
        drawdown: f64,
        reward: f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::CostBreakdown;

    #[test]
    fn records_round_trip_through_the_arrays() {
        let a = Account {
            t: 3,
            last_t: 9,
            steps: 2,
            cash: -1.5,
            nav: 2.5,
            peak: 3.0,
            ew_var: 1e-4,
            log_nav: -0.1,
            drawdown: 0.2,
            dsr_a: 0.01,
            dsr_b: 0.02,
            level: 7,
        };
        let mut accounts = Accounts::new(3, Account::default());
        accounts.set(1, a);
        assert_eq!(accounts.get(1), a);
        assert_eq!(accounts.get(0), Account::default());
        let info = StepInfo {
            t: 4,
            nav: 1.0,
            cash: 2.0,
            traded_notional: 3.0,
            turnover: 4.0,
            costs: CostBreakdown {
                fee: 5.0,
                spread: 6.0,
                impact: 7.0,
                slippage: 8.0,
                borrow: 9.0,
                financing: 10.0,
            },
            gross_exposure: 11.0,
            drawdown: 12.0,
            reward: 13.0,
        };
        let mut infos = Infos::new(2, StepInfo::default());
        infos.set(1, info);
        assert_eq!(infos.get(1), info);
        assert_eq!(infos.get(0), StepInfo::default());
    }
}
