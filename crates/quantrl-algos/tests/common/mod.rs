//! Helpers shared by the PPO integration tests (each test binary uses a subset).
#![allow(dead_code)]

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, backend::Backend};
use quantrl_envs::{CartPole, CartPoleConfig};

/// `n` CartPole-v1 environments with the default configuration.
pub fn cartpole(n: usize) -> CartPole {
    CartPole::new(CartPoleConfig {
        num_envs: n,
        ..Default::default()
    })
}

/// Every float parameter of `model`, in visiting order (for bit-for-bit comparisons of runs).
pub fn params<B: Backend, M: Module<B>>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.extend(p.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}
