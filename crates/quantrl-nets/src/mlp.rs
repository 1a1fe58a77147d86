//! Multi-layer perceptrons: a plain [`Mlp`] and [`ParallelMlp`], `K` independent MLPs over the
//! same input evaluated with batched matmuls (the dual actor/critic trunk).

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_core::Rng;

use crate::{Activation, init::orthogonal};

/// A linear layer initialized orthogonally (weights, `gain`) with zero bias, drawn from `rng`
/// on the host so that every backend gets the same weights.
pub fn linear_orthogonal<B: Backend>(
    d_in: usize,
    d_out: usize,
    gain: f64,
    rng: &mut Rng,
    device: &B::Device,
) -> Linear<B> {
    // Burn's Linear stores the weight as [d_in, d_out]; PyTorch's is [d_out, d_in]. Draw in
    // PyTorch's layout so the init is the same matrix family, then transpose.
    let w = orthogonal(d_out, d_in, gain, rng);
    let mut wt = vec![0f32; d_in * d_out];
    for o in 0..d_out {
        for i in 0..d_in {
            wt[i * d_out + o] = w[o * d_in + i];
        }
    }
    let mut lin = LinearConfig::new(d_in, d_out).init::<B>(device);
    lin.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(wt, [d_in, d_out]),
        device,
    ));
    lin.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    lin
}

/// A linear layer with PyTorch's default initialization (weights and bias uniform in
/// `±1/sqrt(d_in)`), drawn from `rng` on the host.
pub fn linear_uniform<B: Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    rng: &mut Rng,
    device: &B::Device,
) -> Linear<B> {
    let k = 1.0 / (d_in as f64).sqrt();
    let w: Vec<f32> = (0..d_in * d_out)
        .map(|_| rng.uniform_range(-k, k) as f32)
        .collect();
    let b: Option<Vec<f32>> = bias.then(|| {
        (0..d_out)
            .map(|_| rng.uniform_range(-k, k) as f32)
            .collect()
    });
    linear_from_data(
        TensorData::new(w, [d_in, d_out]),
        b.map(|b| TensorData::new(b, [d_out])),
        device,
    )
}

/// A linear layer from PyTorch weights: `weight` is `[d_out, d_in]` row-major (PyTorch's
/// layout, transposed here into Burn's `[d_in, d_out]`), `bias` is `[d_out]`.
pub fn linear_from_pytorch<B: Backend>(
    weight: &[f64],
    d_out: usize,
    bias: Option<&[f64]>,
    device: &B::Device,
) -> Linear<B> {
    assert!(
        d_out > 0 && weight.len().is_multiple_of(d_out),
        "weight of {} values is not [{d_out}, _]",
        weight.len()
    );
    let d_in = weight.len() / d_out;
    let mut wt = vec![0f64; weight.len()];
    for o in 0..d_out {
        for i in 0..d_in {
            wt[i * d_out + o] = weight[o * d_in + i];
        }
    }
    if let Some(b) = bias {
        assert_eq!(b.len(), d_out, "bias length");
    }
    linear_from_data(
        TensorData::new(wt, [d_in, d_out]),
        bias.map(|b| TensorData::new(b.to_vec(), [d_out])),
        device,
    )
}

fn linear_from_data<B: Backend>(
    weight: TensorData,
    bias: Option<TensorData>,
    device: &B::Device,
) -> Linear<B> {
    let [d_in, d_out] = [weight.shape[0], weight.shape[1]];
    let mut lin = LinearConfig::new(d_in, d_out)
        .with_bias(bias.is_some())
        .init::<B>(device);
    lin.weight = Param::from_tensor(Tensor::from_data(weight, device));
    lin.bias = bias.map(|b| Param::from_tensor(Tensor::from_data(b, device)));
    lin
}

/// Hidden layers of linear + activation; the last layer has an activation too (a trunk).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub(crate) layers: Vec<Linear<B>>,
    #[module(skip)]
    pub(crate) activation: Activation,
}

impl<B: Backend> Mlp<B> {
    /// A trunk `d_in -> hidden[0] -> ... -> hidden[last]`, orthogonal init with `gain`
    /// (or Burn's default init when `gain` is `None`).
    pub fn new(
        d_in: usize,
        hidden: &[usize],
        activation: Activation,
        gain: Option<f64>,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Self {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut prev = d_in;
        for &h in hidden {
            layers.push(match gain {
                Some(g) => linear_orthogonal(prev, h, g, rng, device),
                None => LinearConfig::new(prev, h).init(device),
            });
            prev = h;
        }
        Self { layers, activation }
    }

    /// Width of the output (the input width when there are no layers).
    pub fn d_out(&self) -> Option<usize> {
        self.layers.last().map(|l| l.weight.dims()[1])
    }

    /// # Shapes
    /// - `x`: `[batch, d_in]`
    /// - output: `[batch, hidden[last]]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.layers
            .iter()
            .fold(x, |h, l| self.activation.apply(l.forward(h)))
    }
}

/// `K` MLP trunks of the same widths over one shared input, evaluated together.
///
/// Every layer is one batched `[K, h_in, h_out]` matmul; the input `[batch, d_in]` is
/// broadcast over the `K` trunks, so no copy or transpose is needed between layers. For an
/// actor-critic with separate policy and value trunks (`K = 2`) this halves the number of
/// tensor operations per forward and backward pass, which dominates the cost of small
/// networks on CPU.
#[derive(Module, Debug)]
pub struct ParallelMlp<B: Backend> {
    pub(crate) weights: Vec<Param<Tensor<B, 3>>>,
    pub(crate) biases: Vec<Param<Tensor<B, 3>>>,
    #[module(skip)]
    pub(crate) activation: Activation,
}

impl<B: Backend> ParallelMlp<B> {
    /// `k` trunks `d_in -> hidden[0] -> ... -> hidden[last]`, each layer of each trunk
    /// initialized orthogonally with `gain` (drawn trunk by trunk, layer by layer).
    pub fn new(
        k: usize,
        d_in: usize,
        hidden: &[usize],
        activation: Activation,
        gain: f64,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Self {
        assert!(
            k >= 1 && !hidden.is_empty(),
            "ParallelMlp needs k >= 1 and at least one layer"
        );
        let mut per_trunk: Vec<Vec<Vec<f32>>> = Vec::with_capacity(k);
        for _ in 0..k {
            let mut layers = Vec::new();
            let mut prev = d_in;
            for &h in hidden {
                // PyTorch layout [out, in], transposed below.
                layers.push(orthogonal(h, prev, gain, rng));
                prev = h;
            }
            per_trunk.push(layers);
        }
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        let mut hi = d_in;
        for (l, &ho) in hidden.iter().enumerate() {
            let mut w = vec![0f32; k * hi * ho];
            for (t, layers) in per_trunk.iter().enumerate() {
                for o in 0..ho {
                    for i in 0..hi {
                        w[t * hi * ho + i * ho + o] = layers[l][o * hi + i];
                    }
                }
            }
            weights.push(Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [k, hi, ho]),
                device,
            )));
            biases.push(Param::from_tensor(Tensor::zeros([k, 1, ho], device)));
            hi = ho;
        }
        Self {
            weights,
            biases,
            activation,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, d_in]`
    /// - output: `[K, batch, hidden[last]]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 3> {
        let mut h: Tensor<B, 3> = x.unsqueeze();
        for (w, b) in self.weights.iter().zip(&self.biases) {
            h = self.activation.apply(h.matmul(w.val()) + b.val());
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    type B = Autodiff<NdArray<f32>>;

    /// The broadcast matmul of the first layer must give the same gradients as an explicitly
    /// expanded input.
    #[test]
    fn broadcast_first_layer_gradients_match_expanded_input() {
        let dev = Default::default();
        let mut rng = Rng::seed_from_u64(4);
        let net = ParallelMlp::<B>::new(2, 3, &[5, 4], Activation::Tanh, 1.0, &mut rng, &dev);
        let xs: Vec<f32> = (0..18).map(|i| ((i * 7) as f32 * 0.13).sin()).collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(xs, [6, 3]), &dev);
        let loss_a = net.forward(x.clone()).powi_scalar(2).sum();
        let ga = loss_a.backward();
        let mut h: Tensor<B, 3> = x.unsqueeze::<3>().expand([2, 6, 3]);
        for (w, b) in net.weights.iter().zip(&net.biases) {
            h = Activation::Tanh.apply(h.matmul(w.val()) + b.val());
        }
        let gb = h.powi_scalar(2).sum().backward();
        for w in &net.weights {
            let a: Vec<f32> = w.val().grad(&ga).unwrap().into_data().to_vec().unwrap();
            let b: Vec<f32> = w.val().grad(&gb).unwrap().into_data().to_vec().unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
    }
}
