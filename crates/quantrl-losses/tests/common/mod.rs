//! Shared by the float64 and float32 PPO-loss golden tests. Burn 0.21 fixes a device's
//! default float dtype at its first use in a process, so each precision has its own test binary.
#![allow(dead_code)]

use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_losses::categorical::{log_prob_entropy, one_hot};
use quantrl_losses::ppo::{PpoLossConfig, PpoLossInputs, normalize_advantages, ppo_loss};
use quantrl_testkit::{Golden, Value, flat, name, num, shape};

fn t1<B: Backend>(v: &Value, d: &B::Device) -> Tensor<B, 1> {
    let f = flat(v);
    let n = f.len();
    Tensor::from_data(TensorData::new(f, [n]).convert::<B::FloatElem>(), d)
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

pub fn run_case<B: burn::tensor::backend::AutodiffBackend>(
    golden: &Golden,
    case: &Value,
    block: &str,
) {
    let d = Default::default();
    let cname = format!("{} [{block}]", name(case));
    let p = &case["params"];
    let config = PpoLossConfig {
        clip_range: num(&p["clip_range"]),
        clip_range_vf: p["clip_range_vf"].as_f64(),
        ent_coef: num(&p["ent_coef"]),
        vf_coef: num(&p["vf_coef"]),
        normalize_advantage: p["normalize_advantage"].as_bool().unwrap(),
    };
    config.validate().unwrap();
    let inp = &case["inputs"];
    let [b, a] = shape(&inp["logits"])[..] else {
        panic!("logits shape")
    };
    let logits = Tensor::<B, 2>::from_data(
        TensorData::new(flat(&inp["logits"]), [b, a]).convert::<B::FloatElem>(),
        &d,
    )
    .require_grad();
    let values = t1::<B>(&inp["values"], &d).require_grad();
    let actions: Vec<u32> = inp["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let oh = Tensor::<B, 2>::from_data(
        TensorData::new(one_hot(&actions, a), [b, a]).convert::<B::FloatElem>(),
        &d,
    );
    let (log_prob, entropy) = log_prob_entropy(logits.clone(), oh);
    let terms = ppo_loss(
        PpoLossInputs {
            log_prob: log_prob.clone(),
            old_log_prob: t1(&inp["old_log_prob"], &d),
            entropy: entropy.clone(),
            advantages: t1(&inp["advantages"], &d),
            values: values.clone(),
            old_values: t1(&inp["old_values"], &d),
            returns: t1(&inp["returns"], &d),
        },
        &config,
    );
    let exp = &case[block];
    let tol = golden.tolerance(case, block);
    let scalar = |t: Tensor<B, 1>| to_vec(t)[0];
    if exp.get("log_prob").is_some() {
        tol.assert_all(
            &format!("{cname} log_prob"),
            &to_vec(log_prob.clone().detach()),
            &flat(&exp["log_prob"]),
        );
        tol.assert_all(
            &format!("{cname} entropy"),
            &to_vec(entropy.detach()),
            &flat(&exp["entropy"]),
        );
        let adv = t1::<B>(&inp["advantages"], &d);
        let used = if config.normalize_advantage {
            normalize_advantages(adv)
        } else {
            adv
        };
        tol.assert_all(
            &format!("{cname} advantages_used"),
            &to_vec(used),
            &flat(&exp["advantages_used"]),
        );
        let ratio = (log_prob.detach() - t1::<B>(&inp["old_log_prob"], &d)).exp();
        tol.assert_all(
            &format!("{cname} ratio"),
            &to_vec(ratio),
            &flat(&exp["ratio"]),
        );
    }
    tol.assert_scalar(
        &format!("{cname} policy_loss"),
        scalar(terms.policy_loss.clone()),
        num(&exp["policy_loss"]),
    );
    tol.assert_scalar(
        &format!("{cname} value_loss"),
        scalar(terms.value_loss.clone()),
        num(&exp["value_loss"]),
    );
    tol.assert_scalar(
        &format!("{cname} entropy_loss"),
        scalar(terms.entropy_loss.clone()),
        num(&exp["entropy_loss"]),
    );
    tol.assert_scalar(
        &format!("{cname} loss"),
        scalar(terms.loss.clone()),
        num(&exp["loss"]),
    );
    tol.assert_scalar(
        &format!("{cname} approx_kl"),
        scalar(terms.approx_kl.clone()),
        num(&exp["approx_kl"]),
    );
    tol.assert_scalar(
        &format!("{cname} clip_fraction"),
        scalar(terms.clip_fraction.clone()),
        num(&exp["clip_fraction"]),
    );
    let grads = terms.loss.backward();
    tol.assert_all(
        &format!("{cname} grad_logits"),
        &to_vec(logits.grad(&grads).unwrap()),
        &flat(&exp["grad_logits"]),
    );
    tol.assert_all(
        &format!("{cname} grad_values"),
        &to_vec(values.grad(&grads).unwrap()),
        &flat(&exp["grad_values"]),
    );
}
