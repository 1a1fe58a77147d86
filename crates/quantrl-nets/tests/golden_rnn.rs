//! GRU and LSTM against PyTorch (`rnn_cells.json`): outputs, final states and the gradients
//! of every parameter, of the input and of the initial state, with and without episode-start
//! resets, in float64 at the file's tolerance.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use quantrl_nets::{EncoderState, Gru, Lstm, PytorchRnnWeights, SequenceEncoder};
use quantrl_testkit::{Value, flat, load, name, shape};

type B = Autodiff<NdArray<f64>>;

fn tensor<const D: usize>(v: &Value) -> Tensor<B, D> {
    let s: [usize; D] = shape(v).try_into().expect("rank");
    Tensor::from_data(TensorData::new(flat(v), s), &Default::default())
}

fn gv<const D: usize>(t: Tensor<NdArray<f64>, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

fn to_vec<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

/// PyTorch `[G*H, n]` row-major from our Burn-layout `[n, G*H]` gradient.
fn transpose(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

#[test]
fn gru_and_lstm_match_pytorch_float64() {
    let golden = load("rnn_cells");
    let mut checked = 0;
    for case in golden.cases() {
        let case_name = name(case);
        let inputs = &case["inputs"];
        let expected = &case["expected"];
        let tol = golden.tolerance(case, "expected");
        let lstm = case["params"]["cell"] == "lstm";
        let w = &inputs["weights_pytorch_layout"];
        let weights = PytorchRnnWeights {
            weight_ih: flat(&w["weight_ih_l0"]),
            weight_hh: flat(&w["weight_hh_l0"]),
            bias_ih: flat(&w["bias_ih_l0"]),
            bias_hh: flat(&w["bias_hh_l0"]),
        };
        let device = Default::default();
        let x: Tensor<B, 3> = tensor::<3>(&inputs["x"]).require_grad();
        let [b, t, _] = x.dims();
        // h0 (1, batch, H) -> our [batch, layers = 1, H]
        let h0: Tensor<B, 3> = tensor::<3>(&inputs["h0"]).swap_dims(0, 1).require_grad();
        let starts: Tensor<B, 2> = match inputs.get("episode_starts") {
            Some(s) => tensor::<2>(s),
            None => Tensor::zeros([b, t], &device),
        };
        let seed: Tensor<B, 3> = tensor::<3>(&inputs["grad_seed"]);
        let mut state_tensors = vec![h0.clone()];
        let c0 = lstm.then(|| tensor::<3>(&inputs["c0"]).swap_dims(0, 1).require_grad());
        state_tensors.extend(c0.clone());
        let state = EncoderState::new(state_tensors);
        let (out, last, layer) = if lstm {
            let net = Lstm::<B>::from_pytorch(&[weights], &device);
            let (o, s) = net.forward_seq(x.clone(), state, starts);
            (o, s, net.layers()[0].clone())
        } else {
            let net = Gru::<B>::from_pytorch(&[weights], &device);
            let (o, s) = net.forward_seq(x.clone(), state, starts);
            (o, s, net.layers()[0].clone())
        };
        tol.assert_all(
            &format!("{case_name}.output"),
            &to_vec(out.clone()),
            &flat(&expected["output"]),
        );
        tol.assert_all(
            &format!("{case_name}.h_n"),
            &to_vec(last.tensors[0].clone()),
            &flat(&expected["h_n"]),
        );
        if lstm {
            tol.assert_all(
                &format!("{case_name}.c_n"),
                &to_vec(last.tensors[1].clone()),
                &flat(&expected["c_n"]),
            );
        }
        let grads = (out * seed).sum().backward();
        let eg = &expected["grad"];
        let g_of = |p: Tensor<B, 2>| gv(p.grad(&grads).unwrap());
        let [d_in, g] = layer.w_ih.dims();
        let h = layer.w_hh.dims()[0];
        for (label, got) in [
            ("weight_ih_l0", transpose(&g_of(layer.w_ih.val()), d_in, g)),
            ("weight_hh_l0", transpose(&g_of(layer.w_hh.val()), h, g)),
            ("bias_ih_l0", gv(layer.b_ih.val().grad(&grads).unwrap())),
            ("bias_hh_l0", gv(layer.b_hh.val().grad(&grads).unwrap())),
            ("x", gv(x.grad(&grads).unwrap())),
            ("h0", gv(h0.grad(&grads).unwrap())),
        ] {
            tol.assert_all(
                &format!("{case_name}.grad.{label}"),
                &got,
                &flat(&eg[label]),
            );
        }
        if let Some(c0) = c0 {
            tol.assert_all(
                &format!("{case_name}.grad.c0"),
                &gv(c0.grad(&grads).unwrap()),
                &flat(&eg["c0"]),
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 4, "rnn_cells.json has four cases");
}
