//! CartPole-v1 against gymnasium 1.4.0 (`cartpole.json`): every case, every step.

use quantrl_core::{Actions, StepBatch, VecEnv};
use quantrl_envs::{CartPole, CartPoleConfig, CartPolePhysics, check_vec_env};
use quantrl_testkit::{Value, flat, load, name, num};

fn state4(v: &Value) -> [f64; 4] {
    let f = flat(v);
    [f[0], f[1], f[2], f[3]]
}

fn assert_obs_ulp(what: &str, got: &[f32], expected: &[f64], ulps: u32) {
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let e = e as f32;
        let d = (g.to_bits() as i64 - e.to_bits() as i64).unsigned_abs();
        assert!(
            d <= ulps as u64,
            "{what}[{i}]: got {g:e}, expected {e:e} ({d} ulp apart)"
        );
    }
}

#[test]
fn cartpole_matches_gymnasium() {
    let golden = load("cartpole");
    for case in golden.cases() {
        let cname = name(case);
        let c = &case["constants"];
        let physics = CartPolePhysics {
            gravity: num(&c["gravity"]),
            masscart: num(&c["masscart"]),
            masspole: num(&c["masspole"]),
            length: num(&c["length_half_pole"]),
            force_mag: num(&c["force_mag"]),
            tau: num(&c["tau"]),
            theta_threshold_radians: num(&c["theta_threshold_radians"]),
            x_threshold: num(&c["x_threshold"]),
        };
        let max_steps = case["params"]["max_episode_steps"].as_u64().unwrap() as u32;
        let mut env = CartPole::new(CartPoleConfig {
            num_envs: 1,
            max_episode_steps: max_steps,
            hide_velocity: false,
            physics,
        });
        let mut batch = StepBatch::for_env(&env);
        env.reset(Some(0), &mut batch);
        let exp = &case["expected"];
        env.set_state(0, state4(&exp["initial_state"]), &mut batch);
        assert_obs_ulp(
            &format!("{cname} initial_obs"),
            &batch.obs,
            &flat(&exp["initial_obs"]),
            1,
        );

        let state_tol = golden.tolerance(case, "state");
        let actions: Vec<u32> = case["inputs"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_u64().unwrap() as u32)
            .collect();
        let steps = exp["steps"].as_array().unwrap();
        assert_eq!(steps.len(), actions.len());
        let (mut terms, mut truncs) = (vec![], vec![]);
        for (t, rec) in steps.iter().enumerate() {
            let a = rec["action"].as_u64().unwrap() as u32;
            assert_eq!(a, actions[t]);
            env.step(Actions::Discrete(&[a]), &mut batch).unwrap();
            let what = format!("{cname} step {t}");
            let done = batch.done(0);
            // State and obs after the step: for a finished episode, the terminal ones.
            let obs_after: Vec<f32> = if done {
                batch.final_obs.clone()
            } else {
                batch.obs.clone()
            };
            let state_after = if done { None } else { Some(env.state(0)) };
            assert_obs_ulp(&format!("{what} obs"), &obs_after, &flat(&rec["obs"]), 1);
            if let Some(s) = state_after {
                state_tol.assert_all(&format!("{what} state"), &s, &flat(&rec["state"]));
            }
            assert_eq!(
                batch.rewards[0] as f64,
                num(&rec["reward"]),
                "{what} reward"
            );
            assert_eq!(
                batch.terminated[0],
                rec["terminated"].as_bool().unwrap(),
                "{what} terminated"
            );
            assert_eq!(
                batch.truncated[0],
                rec["truncated"].as_bool().unwrap(),
                "{what} truncated"
            );
            if batch.terminated[0] {
                terms.push(t as u64);
            }
            if batch.truncated[0] {
                truncs.push(t as u64);
            }
            if done {
                // The reference resets from numpy's PCG64 stream: inject its reset state.
                env.set_state(0, state4(&rec["reset_state"]), &mut batch);
                assert_obs_ulp(
                    &format!("{what} reset_obs"),
                    &batch.obs,
                    &flat(&rec["reset_obs"]),
                    1,
                );
            } else {
                assert_eq!(
                    env.episode_step(0) as u64,
                    rec["episode_step"].as_u64().unwrap(),
                    "{what} episode_step"
                );
            }
        }
        let list = |v: &Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        };
        assert_eq!(
            terms,
            list(&exp["termination_steps"]),
            "{cname} termination steps"
        );
        assert_eq!(
            truncs,
            list(&exp["truncation_steps"]),
            "{cname} truncation steps"
        );
    }
}

/// The terminal state itself must match where an episode ended; check it through a second
/// env that does not auto-reset (physics alone).
#[test]
fn terminal_states_match_physics() {
    let golden = load("cartpole");
    for case in golden.cases() {
        let exp = &case["expected"];
        let mut s = state4(&exp["initial_state"]);
        let physics = CartPolePhysics::default();
        for rec in exp["steps"].as_array().unwrap() {
            let term = physics.step(&mut s, rec["action"].as_u64().unwrap() as u32);
            golden.tolerance(case, "state").assert_all(
                &format!("{} t={}", name(case), rec["t"]),
                &s,
                &flat(&rec["state"]),
            );
            assert_eq!(term, rec["terminated"].as_bool().unwrap());
            if rec.get("reset_state").is_some() {
                s = state4(&rec["reset_state"]);
            }
        }
    }
}

#[test]
fn cartpole_conforms() {
    for hide in [false, true] {
        let report = check_vec_env(
            || {
                CartPole::new(CartPoleConfig {
                    num_envs: 4,
                    hide_velocity: hide,
                    max_episode_steps: 50,
                    ..Default::default()
                })
            },
            300,
            11,
        )
        .unwrap();
        assert!(
            report.terminations > 0 && report.truncations > 0,
            "{report:?}"
        );
    }
}

#[test]
fn novel_hides_velocities() {
    let mut env = CartPole::new(CartPoleConfig {
        num_envs: 1,
        hide_velocity: true,
        ..Default::default()
    });
    let mut batch = StepBatch::for_env(&env);
    env.reset(Some(3), &mut batch);
    env.step(Actions::Discrete(&[1]), &mut batch).unwrap();
    let s = env.state(0);
    assert_eq!(batch.obs, vec![s[0] as f32, s[2] as f32]);
    assert_eq!(env.name(), "CartPoleNoVel-v1");
}

#[test]
fn bad_actions_are_errors() {
    let mut env = CartPole::new(CartPoleConfig {
        num_envs: 2,
        ..Default::default()
    });
    let mut batch = StepBatch::for_env(&env);
    assert!(
        env.step(Actions::Discrete(&[0, 0]), &mut batch).is_err(),
        "step before reset"
    );
    env.reset(None, &mut batch);
    assert!(env.step(Actions::Discrete(&[0]), &mut batch).is_err());
    assert!(env.step(Actions::Discrete(&[0, 2]), &mut batch).is_err());
    assert!(
        env.step(Actions::Continuous(&[0.0, 0.0]), &mut batch)
            .is_err()
    );
}
