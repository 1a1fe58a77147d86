//! Parameter groups: parts of a module trained with their own learning-rate multiplier.
//!
//! Burn 0.21 has no parameter groups. [`GroupedOptimizer`] wraps any Burn [`Optimizer`] and
//! steps each group with `lr * multiplier`: before the step the gradients are split by
//! parameter id (a visit of the module), then the wrapped optimizer steps once per group. The
//! optimizer state is per parameter, so a parameter always keeps its own moments.
//!
//! Because each group is a separate step, an optimizer whose step reduces over all parameters
//! must not be wrapped: [`Upgd`](crate::Upgd) takes its groups itself
//! ([`Upgd::with_groups`](crate::Upgd::with_groups)) so that its global maximum utility stays
//! global.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, LearningRate, Optimizer};
use burn::tensor::{Tensor, backend::AutodiffBackend};
use serde::{Deserialize, Serialize};

/// A named set of parameters with a learning-rate multiplier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamGroup {
    /// Name for logs (e.g. `value_head`).
    pub name: String,
    /// Multiplier applied to the base learning rate.
    pub lr_multiplier: f64,
    /// The parameters in the group.
    #[serde(skip)]
    pub params: Vec<ParamId>,
}

struct Split<'a> {
    source: &'a mut GradientsParams,
    targets: &'a mut [GradientsParams],
    group_of: &'a HashMap<ParamId, usize>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Split<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(&g) = self.group_of.get(&param.id)
            && let Some(grad) = self.source.remove::<B::InnerBackend, D>(param.id)
        {
            self.targets[g].register(param.id, grad);
        }
    }
}

/// An optimizer whose parameters are split into groups with their own learning-rate
/// multipliers; parameters in no group use the base rate.
#[derive(Clone)]
pub struct GroupedOptimizer<O> {
    inner: O,
    groups: Vec<ParamGroup>,
    group_of: HashMap<ParamId, usize>,
}

impl<O> GroupedOptimizer<O> {
    /// Wrap `inner` with `groups` (a parameter listed in two groups belongs to the first).
    pub fn new(inner: O, groups: Vec<ParamGroup>) -> Self {
        let mut group_of = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            for id in &g.params {
                group_of.entry(*id).or_insert(i);
            }
        }
        Self {
            inner,
            groups,
            group_of,
        }
    }

    /// The groups.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// The learning-rate multiplier of parameter `id` (1 outside every group).
    pub fn lr_multiplier(&self, id: ParamId) -> f64 {
        self.group_of
            .get(&id)
            .map_or(1.0, |&g| self.groups[g].lr_multiplier)
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O, M, B> Optimizer<M, B> for GroupedOptimizer<O>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    type Record = O::Record;

    fn step(&mut self, lr: LearningRate, module: M, mut grads: GradientsParams) -> M {
        if self.groups.is_empty() {
            return self.inner.step(lr, module, grads);
        }
        let mut split: Vec<GradientsParams> =
            self.groups.iter().map(|_| GradientsParams::new()).collect();
        module.visit(&mut Split {
            source: &mut grads,
            targets: &mut split,
            group_of: &self.group_of,
        });
        let mut module = self.inner.step(lr, module, grads);
        for (group, g) in self.groups.iter().zip(split) {
            if !g.is_empty() {
                module = self.inner.step(lr * group.lr_multiplier, module, g);
            }
        }
        module
    }

    fn step_multi(
        &mut self,
        lr: LearningRate,
        module: M,
        grads: burn::optim::MultiGradientsParams,
    ) -> M {
        self.inner.step_multi(lr, module, grads)
    }

    fn to_record(&self) -> Self::Record {
        self.inner.to_record()
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.inner = self.inner.load_record(record);
        self
    }
}
