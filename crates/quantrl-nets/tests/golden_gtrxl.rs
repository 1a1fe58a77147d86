//! GTrXL against DI-engine (`gtrxl_gate.json`), float64 at the file's tolerance: the gating
//! unit (values and every gradient) and the whole forward over consecutive segments with the
//! memory carried between calls.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use quantrl_nets::{EncoderState, GruGate, GtrxlConfig, SequenceEncoder};
use quantrl_testkit::{Value, flat, load, name, shape};

type B = Autodiff<NdArray<f64>>;

fn tensor<const D: usize>(v: &Value) -> Tensor<B, D> {
    let s: [usize; D] = shape(v).try_into().expect("rank");
    Tensor::from_data(TensorData::new(flat(v), s), &Default::default())
}

fn vals<const D: usize>(t: Tensor<NdArray<f64>, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

/// Block `k` of a fused Burn-layout `[D, K*D]` weight gradient, in PyTorch layout `[D, D]`.
fn unfuse(g: &[f64], d: usize, blocks: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for o in 0..d {
        for i in 0..d {
            out[o * d + i] = g[i * blocks * d + k * d + o];
        }
    }
    out
}

fn check_gate(golden: &quantrl_testkit::Golden, case: &Value) {
    let case_name = name(case);
    let tol = golden.tolerance(case, "expected");
    let inputs = &case["inputs"];
    let sd = &inputs["state_dict"];
    let device = Default::default();
    let gate = GruGate::<B>::from_pytorch(
        &flat(&sd["Wr.weight"]),
        &flat(&sd["Ur.weight"]),
        &flat(&sd["Wz.weight"]),
        &flat(&sd["Uz.weight"]),
        &flat(&sd["Wg.weight"]),
        &flat(&sd["Ug.weight"]),
        &flat(&sd["bg"]),
        &device,
    );
    let x3: Tensor<B, 3> = tensor(&inputs["x"]);
    let [s, b, d] = x3.dims();
    let x = x3.reshape([s * b, d]).require_grad();
    let y = tensor::<3>(&inputs["y"]).reshape([s * b, d]).require_grad();
    let g = gate.forward(x.clone(), y.clone());
    let e = &case["expected"];
    tol.assert_all(
        &format!("{case_name}.g"),
        &vals(g.clone().inner()),
        &flat(&e["g"]),
    );
    let seed = tensor::<3>(&inputs["grad_seed"]).reshape([s * b, d]);
    let grads = (g * seed).sum().backward();
    let eg = &e["grad"];
    let w = vals(gate.w.val().grad(&grads).unwrap());
    let urz = vals(gate.u_rz.val().grad(&grads).unwrap());
    let ug = vals(gate.u_g.val().grad(&grads).unwrap());
    for (label, got) in [
        ("x", vals(x.grad(&grads).unwrap())),
        ("y", vals(y.grad(&grads).unwrap())),
        ("bg", vals(gate.bg.val().grad(&grads).unwrap())),
        ("Wr.weight", unfuse(&w, d, 3, 0)),
        ("Wz.weight", unfuse(&w, d, 3, 1)),
        ("Wg.weight", unfuse(&w, d, 3, 2)),
        ("Ur.weight", unfuse(&urz, d, 2, 0)),
        ("Uz.weight", unfuse(&urz, d, 2, 1)),
        ("Ug.weight", unfuse(&ug, d, 1, 0)),
    ] {
        tol.assert_all(
            &format!("{case_name}.grad.{label}"),
            &got,
            &flat(&eg[label]),
        );
    }
}

fn check_gtrxl(golden: &quantrl_testkit::Golden, case: &Value) {
    let case_name = name(case);
    let tol = golden.tolerance(case, "expected");
    let p = &case["params"];
    let u = |k: &str| p[k].as_u64().unwrap() as usize;
    let config = GtrxlConfig::new(u("input_dim"))
        .with_embedding_dim(u("embedding_dim"))
        .with_head_num(u("head_num"))
        .with_head_dim(u("head_dim"))
        .with_mlp_num(u("mlp_num"))
        .with_layer_num(u("layer_num"))
        .with_memory_len(u("memory_len"))
        .with_gru_bias(p["gru_bias"].as_f64().unwrap());
    let sd = &case["inputs"]["state_dict"];
    let device = Default::default();
    let net = config.from_di_engine::<B>(
        |n, s| {
            let v = &sd[n];
            assert!(!v.is_null(), "{case_name}: state dict has no `{n}`");
            assert_eq!(shape(v), s, "{case_name}: shape of `{n}`");
            flat(v)
        },
        &device,
    );
    let segments = case["inputs"]["segments"].as_array().unwrap();
    let calls = case["expected"]["calls"].as_array().unwrap();
    assert_eq!(segments.len(), calls.len());
    let bs = u("batch_size");
    let mut memory: EncoderState<B> = net.initial_state(bs, &device);
    let (layers, m, e) = (u("layer_num"), u("memory_len"), u("embedding_dim"));
    for (k, (seg, call)) in segments.iter().zip(calls).enumerate() {
        // (cur, bs, input) -> (bs, cur, input)
        let x = tensor::<3>(seg).swap_dims(0, 1);
        let (out, mem) = net.forward_segment(x, memory);
        // expected logit (cur, bs, E)
        tol.assert_all(
            &format!("{case_name}.call{k}.logit"),
            &vals(out.swap_dims(0, 1).inner()),
            &flat(&call["logit"]),
        );
        // expected memory (layers+1, m, bs, E); ours [bs, (layers+1)*m, E]
        let ours = vals(
            mem.tensors[0]
                .clone()
                .reshape([bs, layers + 1, m, e])
                .permute([1, 2, 0, 3])
                .inner(),
        );
        tol.assert_all(
            &format!("{case_name}.call{k}.memory_after"),
            &ours,
            &flat(&call["memory_after"]),
        );
        memory = mem;
    }
}

#[test]
fn gtrxl_matches_di_engine_float64() {
    let golden = load("gtrxl_gate");
    let mut kinds = Vec::new();
    for case in golden.cases() {
        match case["kind"].as_str().unwrap() {
            "gate" => check_gate(&golden, case),
            "gtrxl" => check_gtrxl(&golden, case),
            other => panic!("unknown case kind {other}"),
        }
        kinds.push(case["kind"].as_str().unwrap().to_string());
    }
    assert!(kinds.iter().any(|k| k == "gate") && kinds.iter().any(|k| k == "gtrxl"));
}
