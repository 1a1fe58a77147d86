//! Categorical distribution math over logits.

use burn::tensor::{Tensor, activation::log_softmax, backend::Backend};

/// Log-probabilities of the taken actions and the entropy of each row's distribution.
///
/// `actions_one_hot` is a `[batch, n_actions]` float tensor with a single 1 per row (built on
/// the host from integer actions with [`one_hot`]); multiplying by it instead of gathering
/// keeps the backward pass to one multiplication.
///
/// # Shapes
/// - `logits`: `[batch, n_actions]`
/// - `actions_one_hot`: `[batch, n_actions]`
/// - output: `(log_prob [batch], entropy [batch])`
pub fn log_prob_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    actions_one_hot: Tensor<B, 2>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, _] = logits.dims();
    let log_p = log_softmax(logits, 1);
    let log_prob = (log_p.clone() * actions_one_hot).sum_dim(1).reshape([n]);
    let entropy = (log_p.clone().exp() * log_p).sum_dim(1).reshape([n]).neg();
    (log_prob, entropy)
}

/// Row-major one-hot encoding of integer actions, `[actions.len() * n_actions]`.
pub fn one_hot(actions: &[u32], n_actions: usize) -> Vec<f32> {
    let mut out = vec![0f32; actions.len() * n_actions];
    for (i, &a) in actions.iter().enumerate() {
        out[i * n_actions + a as usize] = 1.0;
    }
    out
}
