//! UPGD and AdaUPGD against the reference optimizers (`upgd.json`): every case, every step, in
//! float64 with the file's tolerance. The model is the reference's MLP with PyTorch's weight
//! layout (`[out, in]`, `y = x Wᵀ + b`), so local normalization along the last axis is the
//! reference's `F.normalize(dim=-1)` literally. The reference's `torch.randn_like` draws are
//! replayed through `ReplayNoise`; the sigma = 0 cases queue no draws, so a draw would panic.

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_optim::{
    AdamMoments, Perturbation, ReplayNoise, UpgdSettings, UtilityOrder, UtilityScope,
};
use quantrl_testkit::{Value, flat, load, name, num, shape};

type B = Autodiff<NdArray<f64>>;
type Inner = NdArray<f64>;

const NAMES: [&str; 4] = ["0.weight", "0.bias", "2.weight", "2.bias"];

#[derive(Module, Debug)]
struct TorchMlp<B: Backend> {
    w0: Param<Tensor<B, 2>>,
    b0: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

impl<B: Backend> TorchMlp<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = (x.matmul(self.w0.val().transpose()) + self.b0.val().unsqueeze()).tanh();
        h.matmul(self.w2.val().transpose()) + self.b2.val().unsqueeze()
    }

    fn ids(&self) -> [burn::module::ParamId; 4] {
        [self.w0.id, self.b0.id, self.w2.id, self.b2.id]
    }

    fn values(&self) -> [Vec<f64>; 4] {
        [
            vals(self.w0.val()),
            vals(self.b0.val()),
            vals(self.w2.val()),
            vals(self.b2.val()),
        ]
    }
}

fn tensor<const D: usize>(v: &Value) -> Tensor<B, D> {
    let s: [usize; D] = shape(v).try_into().expect("rank");
    Tensor::from_data(TensorData::new(flat(v), s), &Default::default())
}

fn vals<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f64> {
    t.into_data().to_vec().unwrap()
}

fn settings(optimizer: &Value) -> UpgdSettings {
    let k = &optimizer["kwargs"];
    let class = optimizer["class"].as_str().unwrap();
    let mut s = UpgdSettings {
        weight_decay: num(&k["weight_decay"]),
        beta_utility: num(&k["beta_utility"]),
        sigma: num(&k["sigma"]),
        scope: UtilityScope::Global,
        perturbation: Perturbation::Protected,
        utility_order: UtilityOrder::FirstOrder,
        adaptive: None,
        step_size_factor: 1.0,
    };
    match class {
        "FirstOrderGlobalUPGD" => {}
        "FirstOrderNonprotectingGlobalUPGD" => s.perturbation = Perturbation::NonProtected,
        "FirstOrderLocalUPGD" => s.scope = UtilityScope::Local,
        "FirstOrderNonprotectingLocalUPGD" => {
            s.scope = UtilityScope::Local;
            s.perturbation = Perturbation::NonProtected;
        }
        "UPGD_README" => s.step_size_factor = 2.0,
        "AdaptiveUPGD" => {
            s.step_size_factor = 2.0;
            s.adaptive = Some(AdamMoments {
                beta1: num(&k["beta1"]),
                beta2: num(&k["beta2"]),
                eps: num(&k["eps"]),
            });
        }
        other => panic!("unknown reference class {other}"),
    }
    s.validate().unwrap();
    s
}

#[test]
fn upgd_matches_reference_for_every_variant() {
    let golden = load("upgd");
    let mut classes = std::collections::BTreeSet::new();
    for case in golden.cases() {
        let cname = name(case);
        let tol = golden.tolerance(case, "expected");
        let settings = settings(&case["optimizer"]);
        classes.insert(case["optimizer"]["class"].as_str().unwrap().to_string());
        let lr = num(&case["optimizer"]["kwargs"]["lr"]);
        let names: Vec<&str> = case["model"]["param_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, NAMES, "{cname}: parameter order");
        let init = &case["inputs"]["params_init"];
        let mut model = TorchMlp::<B> {
            w0: Param::from_tensor(tensor(&init["0.weight"])),
            b0: Param::from_tensor(tensor(&init["0.bias"])),
            w2: Param::from_tensor(tensor(&init["2.weight"])),
            b2: Param::from_tensor(tensor(&init["2.bias"])),
        };
        let ids = model.ids();
        let steps = case["expected"]["steps"].as_array().unwrap();
        assert_eq!(
            steps.len() as u64,
            case["inputs"]["n_steps"].as_u64().unwrap()
        );
        let mut noise = ReplayNoise::new();
        if settings.sigma > 0.0 {
            for step in steps {
                for (id, pname) in ids.iter().zip(NAMES) {
                    noise.push(*id, flat(&step["noise_std_normal"][pname]));
                }
            }
        }
        let mut optim = settings.init::<B, _>(noise);
        let x = tensor::<2>(&case["inputs"]["x"]);
        let y = tensor::<2>(&case["inputs"]["y"]);
        for step in steps {
            let k = step["step"].as_u64().unwrap();
            let what = |f: &str, p: &str| format!("{cname} step {k} {f} {p}");
            for (v, pname) in model.values().iter().zip(NAMES) {
                tol.assert_all(
                    &what("params_before", pname),
                    v,
                    &flat(&step["params_before"][pname]),
                );
            }
            let loss = (model.forward(x.clone()) - y.clone()).square().mean();
            tol.assert_scalar(&what("loss", ""), vals(loss.clone())[0], num(&step["loss"]));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            for (id, pname) in ids.iter().zip(NAMES) {
                let g = match pname {
                    "0.weight" | "2.weight" => vals(grads.get::<Inner, 2>(*id).unwrap()),
                    _ => vals(grads.get::<Inner, 1>(*id).unwrap()),
                };
                tol.assert_all(&what("grads", pname), &g, &flat(&step["grads"][pname]));
            }
            model = optim.step(lr, model, grads);
            for (v, pname) in model.values().iter().zip(NAMES) {
                tol.assert_all(
                    &what("params_after", pname),
                    v,
                    &flat(&step["params_after"][pname]),
                );
            }
            let state = &step["state_after"];
            for (id, pname) in ids.iter().zip(NAMES) {
                let s = optim.param_state(*id).expect("state after a step");
                assert_eq!(s.step as u64, k);
                tol.assert_all(
                    &what("avg_utility", pname),
                    &vals(s.utility.clone()),
                    &flat(&state["avg_utility"][pname]),
                );
                if settings.adaptive.is_some() {
                    tol.assert_all(
                        &what("first_moment", pname),
                        &vals(s.first_moment.clone().unwrap()),
                        &flat(&state["first_moment"][pname]),
                    );
                    tol.assert_all(
                        &what("sec_moment", pname),
                        &vals(s.second_moment.clone().unwrap()),
                        &flat(&state["sec_moment"][pname]),
                    );
                }
            }
            match step.get("global_max_util") {
                Some(m) => {
                    assert_eq!(settings.scope, UtilityScope::Global, "{cname}");
                    tol.assert_scalar(
                        &what("global_max_util", ""),
                        optim.last_global_max().unwrap(),
                        num(m),
                    );
                }
                None => assert_eq!(settings.scope, UtilityScope::Local, "{cname}"),
            }
        }
        assert_eq!(optim.noise().remaining(), 0, "{cname}: unused noise draws");
    }
    for class in [
        "FirstOrderGlobalUPGD",
        "FirstOrderNonprotectingGlobalUPGD",
        "FirstOrderLocalUPGD",
        "FirstOrderNonprotectingLocalUPGD",
        "AdaptiveUPGD",
        "UPGD_README",
    ] {
        assert!(classes.contains(class), "no golden case for {class}");
    }
}
