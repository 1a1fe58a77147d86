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

/// Hidden layers of linear + activation; the last layer has an activation too (a trunk).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
    #[module(skip)]
    activation: Activation,
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
/// The first layer is one `[d_in, K * h0]` matmul (the input is shared, so nothing is
/// wasted); later layers are batched `[K, h_in, h_out]` matmuls. For an actor-critic with
/// separate policy and value trunks (`K = 2`) this halves the number of tensor operations per
/// forward and backward pass, which dominates the cost of small networks on CPU.
#[derive(Module, Debug)]
pub struct ParallelMlp<B: Backend> {
    pub(crate) first: Linear<B>,
    pub(crate) weights: Vec<Param<Tensor<B, 3>>>,
    biases: Vec<Param<Tensor<B, 3>>>,
    #[module(skip)]
    k: usize,
    #[module(skip)]
    activation: Activation,
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
        let h0 = hidden[0];
        // First layer: K orthogonal [d_in, h0] blocks side by side.
        let mut w0 = vec![0f32; d_in * k * h0];
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
        for (t, layers) in per_trunk.iter().enumerate() {
            for o in 0..h0 {
                for i in 0..d_in {
                    w0[i * k * h0 + t * h0 + o] = layers[0][o * d_in + i];
                }
            }
        }
        let mut first = LinearConfig::new(d_in, k * h0).init::<B>(device);
        first.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(w0, [d_in, k * h0]),
            device,
        ));
        first.bias = Some(Param::from_tensor(Tensor::zeros([k * h0], device)));
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in 1..hidden.len() {
            let (hi, ho) = (hidden[l - 1], hidden[l]);
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
        }
        Self {
            first,
            weights,
            biases,
            k,
            activation,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, d_in]`
    /// - output: `[K, batch, hidden[last]]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 3> {
        let act = self.activation;
        let [n, _] = x.dims();
        let h = act.apply(self.first.forward(x));
        let h0 = h.dims()[1] / self.k;
        let mut h: Tensor<B, 3> = h.reshape([n, self.k, h0]).swap_dims(0, 1);
        for (w, b) in self.weights.iter().zip(&self.biases) {
            h = act.apply(h.matmul(w.val()) + b.val());
        }
        h
    }
}
