//! The explorer driven through synthetic programs, as Python drives it.

mod common;

use common::{explore, lost_update, lost_update_bug, run_once, Op};
use plait_core::{
    decode_token, ConfigError, ExploreError, Explorer, ExplorerConfig, StopReason, Strategy,
};

fn config(strategy: Strategy) -> ExplorerConfig {
    ExplorerConfig {
        strategy,
        stop_on_first: false,
        ..ExplorerConfig::default()
    }
}

fn explorer(c: ExplorerConfig) -> Explorer {
    Explorer::new(c).unwrap()
}

#[test]
fn dfs_two_actors_two_steps_is_six_interleavings() {
    let prog = vec![
        vec![Op::Store(0, 1), Op::Store(1, 1)],
        vec![Op::Store(2, 1), Op::Store(3, 1)],
    ];
    let mut ex = explorer(config(Strategy::Dfs));
    let outs = explore(&mut ex, &prog, 4, |_| false).unwrap();
    assert_eq!(outs.len(), 6);
    let mut schedules: Vec<_> = outs.iter().map(|o| o.schedule.clone()).collect();
    schedules.sort();
    schedules.dedup();
    assert_eq!(
        schedules.len(),
        6,
        "every execution is a different interleaving"
    );
    // The first execution takes every default.
    assert_eq!(outs[0].schedule, vec![0, 0, 1, 1]);
    let s = ex.stats();
    assert!(s.exhausted && !s.bounded);
    assert_eq!(s.stopped_by, Some(StopReason::Exhausted));
    assert_eq!(s.executions, 6);
    assert_eq!(s.max_decisions, 4);
    assert_eq!(s.steps, 24);
    assert_eq!(s.strategy, "dfs");
}

#[test]
fn dfs_finds_lost_update_and_counts_failures() {
    let mut ex = explorer(config(Strategy::Dfs));
    let outs = explore(&mut ex, &lost_update(2), 1, lost_update_bug(2)).unwrap();
    assert_eq!(outs.len(), 6);
    // Only the two serial schedules are correct.
    assert_eq!(ex.stats().failures, 4);
}

#[test]
fn dfs_stop_on_first() {
    let mut c = config(Strategy::Dfs);
    c.stop_on_first = true;
    let mut ex = explorer(c);
    let outs = explore(&mut ex, &lost_update(2), 1, lost_update_bug(2)).unwrap();
    assert_eq!(
        outs.len(),
        2,
        "the serial schedule, then the first buggy one"
    );
    let s = ex.stats();
    assert_eq!(s.failures, 1);
    assert_eq!(s.stopped_by, Some(StopReason::Failure));
    assert!(!s.exhausted);
    // The token is the failing execution's.
    let t = decode_token(&ex.token()).unwrap();
    assert_eq!(t.decisions, 4);
    assert_eq!(t.deviations.len(), 1);
}

#[test]
fn random_finds_lost_update_within_budget() {
    let mut c = config(Strategy::Random);
    c.stop_on_first = true;
    c.seed = 1;
    c.max_executions = Some(200);
    let mut ex = explorer(c);
    explore(&mut ex, &lost_update(3), 1, lost_update_bug(3)).unwrap();
    let s = ex.stats();
    assert_eq!(s.failures, 1);
    assert_eq!(s.stopped_by, Some(StopReason::Failure));
    assert_eq!(s.strategy, "random");
}

#[test]
fn pct_finds_lost_update_within_budget() {
    for seed in 0..5 {
        let mut c = config(Strategy::Pct);
        c.stop_on_first = true;
        c.seed = seed;
        c.max_executions = Some(200);
        let mut ex = explorer(c);
        explore(&mut ex, &lost_update(3), 1, lost_update_bug(3)).unwrap();
        assert_eq!(ex.stats().failures, 1, "seed {seed}");
    }
}

#[test]
fn random_and_pct_are_deterministic_per_seed() {
    for strategy in [Strategy::Random, Strategy::Pct] {
        let run = || {
            let mut c = config(strategy);
            c.seed = 99;
            c.max_executions = Some(50);
            let mut ex = explorer(c);
            explore(&mut ex, &lost_update(3), 1, |_| false).unwrap()
        };
        assert_eq!(run(), run());
    }
}

#[test]
fn execution_seeds() {
    let mut c = config(Strategy::Dfs);
    c.seed = 7;
    let mut ex = explorer(c);
    while ex.start_execution().unwrap() {
        assert_eq!(
            ex.execution_seed(),
            7,
            "dfs keeps the seed: only the schedule varies"
        );
        run_once(&mut ex, &lost_update(2), 1, None).unwrap();
        ex.end_execution(false).unwrap();
    }
    let mut c = config(Strategy::Random);
    c.seed = 7;
    c.max_executions = Some(10);
    let mut ex = explorer(c);
    let mut seeds = Vec::new();
    while ex.start_execution().unwrap() {
        seeds.push(ex.execution_seed());
        run_once(&mut ex, &lost_update(2), 1, None).unwrap();
        ex.end_execution(false).unwrap();
        assert_eq!(
            decode_token(&ex.token()).unwrap().seed,
            *seeds.last().unwrap()
        );
    }
    seeds.sort_unstable();
    seeds.dedup();
    assert_eq!(seeds.len(), 10, "random walk derives a seed per execution");
}

#[test]
fn replay_reproduces_the_failing_schedule_every_time() {
    for strategy in [Strategy::Dfs, Strategy::Random, Strategy::Pct] {
        let mut c = config(strategy);
        c.stop_on_first = true;
        c.seed = 3;
        c.settings = b"gil".to_vec();
        let mut ex = explorer(c);
        let outs = explore(&mut ex, &lost_update(3), 1, lost_update_bug(3)).unwrap();
        let failing = outs.last().unwrap().clone();
        let token = ex.token();
        let seed = ex.execution_seed();
        for _ in 0..20 {
            let mut rc = config(Strategy::Replay);
            rc.token = Some(token.clone());
            let mut rex = explorer(rc);
            assert_eq!(rex.settings(), b"gil");
            let outs = explore(&mut rex, &lost_update(3), 1, lost_update_bug(3)).unwrap();
            assert_eq!(outs, vec![failing.clone()], "{strategy:?}");
            assert_eq!(rex.execution_seed(), seed);
            assert_eq!(rex.token(), token, "replaying a token reproduces the token");
            let s = rex.stats();
            assert_eq!((s.executions, s.failures), (1, 1));
            assert_eq!(s.stopped_by, Some(StopReason::Exhausted));
        }
    }
}

#[test]
fn replay_divergence_names_the_decision() {
    // Token from a 3-actor run, replayed against 2 actors.
    let mut c = config(Strategy::Dfs);
    c.stop_on_first = true;
    let mut ex = explorer(c);
    explore(&mut ex, &lost_update(3), 1, lost_update_bug(3)).unwrap();
    let mut rc = config(Strategy::Replay);
    rc.token = Some(ex.token());
    let mut rex = explorer(rc);
    let err = explore(&mut rex, &lost_update(2), 1, |_| false).unwrap_err();
    match &err {
        // The first schedule that fails runs actor 2 early, at decision 3 (A A B C ...).
        ExploreError::ReplayDivergence { decision, .. } => assert_eq!(*decision, 3),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("decision 3"), "{err}");
    assert!(err.to_string().contains("not runnable"), "{err}");
    assert_eq!(rex.stats().stopped_by, Some(StopReason::Error));

    // A token whose actor is not runnable.
    let mut rc = config(Strategy::Replay);
    rc.token = Some(ex.token());
    let mut rex = explorer(rc);
    assert!(rex.start_execution().unwrap());
    let first = decode_token(&ex.token()).unwrap().deviations[0];
    let mut decision = 0;
    let err = loop {
        let r = if decision == first.decision {
            rex.choose_actor(&[0, 1, 2].map(|x| x + 10), None)
        } else {
            rex.choose_actor(&[0, 1, 2], Some(0))
        };
        match r {
            Ok(_) => decision += 1,
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("not runnable"), "{err}");
}

#[test]
fn replay_detects_an_early_end() {
    let mut c = config(Strategy::Dfs);
    c.stop_on_first = true;
    let mut ex = explorer(c);
    explore(&mut ex, &lost_update(2), 1, lost_update_bug(2)).unwrap();
    let mut rc = config(Strategy::Replay);
    rc.token = Some(ex.token());
    let mut rex = explorer(rc);
    assert!(rex.start_execution().unwrap());
    rex.choose_actor(&[0, 1], None).unwrap();
    let err = rex.end_execution(false).unwrap_err();
    assert!(
        matches!(err, ExploreError::ReplayDivergence { decision: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn preemption_bound_zero() {
    let mut c = config(Strategy::Dfs);
    c.preemption_bound = Some(0);
    // With no current actor, the first pick is free: each actor may go first.
    let mut ex = explorer(c.clone());
    let outs = explore(&mut ex, &lost_update(2), 1, |_| false).unwrap();
    assert_eq!(outs.len(), 2);
    assert!(ex.stats().exhausted && ex.stats().bounded);
    // With actor 0 running at the start, only the serial schedule is preemption-free.
    let mut ex = explorer(c);
    let mut n = 0;
    while ex.start_execution().unwrap() {
        run_once(&mut ex, &lost_update(2), 1, Some(0)).unwrap();
        ex.end_execution(false).unwrap();
        n += 1;
    }
    assert_eq!(n, 1);
}

#[test]
fn delay_bound_zero_runs_only_the_default() {
    let mut c = config(Strategy::Dfs);
    c.delay_bound = Some(0);
    let mut ex = explorer(c);
    let outs = explore(&mut ex, &lost_update(3), 1, |_| false).unwrap();
    assert_eq!(outs.len(), 1);
    let s = ex.stats();
    assert!(s.exhausted && s.bounded);
}

#[test]
fn bounds_grow_monotonically_to_the_full_space() {
    let prog = lost_update(3);
    let count = |p: Option<u32>, d: Option<u32>| {
        let mut c = config(Strategy::Dfs);
        c.preemption_bound = p;
        c.delay_bound = d;
        let mut ex = explorer(c);
        explore(&mut ex, &prog, 1, |_| false).unwrap().len()
    };
    let full = count(None, None);
    assert_eq!(full, 90, "6!/(2!2!2!) interleavings");
    let mut last = 0;
    for b in 0..8 {
        let n = count(Some(b), None);
        assert!(n >= last && n <= full);
        last = n;
    }
    assert_eq!(last, full);
    let mut last = 0;
    for b in 0..12 {
        let n = count(None, Some(b));
        assert!(n >= last && n <= full);
        last = n;
    }
    assert_eq!(last, full);
    // A delay bound of 1 allows exactly one deviation by one position.
    assert!(count(None, Some(1)) > 1);
}

#[test]
fn dfs_explores_recorded_choices() {
    let prog = vec![vec![Op::Choose(3), Op::Choose(2)]];
    let mut ex = explorer(config(Strategy::Dfs));
    let outs = explore(&mut ex, &prog, 1, |_| false).unwrap();
    let mut sums: Vec<i64> = outs.iter().map(|o| o.vars[0]).collect();
    sums.sort_unstable();
    assert_eq!(sums, vec![0, 1, 1, 2, 2, 3]);
    let mut c = config(Strategy::Dfs);
    c.delay_bound = Some(1);
    let mut ex = explorer(c);
    assert_eq!(explore(&mut ex, &prog, 1, |_| false).unwrap().len(), 3);
}

#[test]
fn budgets_stop_the_exploration() {
    let mut c = config(Strategy::Dfs);
    c.max_executions = Some(3);
    let mut ex = explorer(c);
    let outs = explore(&mut ex, &lost_update(3), 1, |_| false).unwrap();
    assert_eq!(outs.len(), 3);
    assert_eq!(ex.stats().stopped_by, Some(StopReason::Budget));
    assert!(!ex.stats().exhausted);

    let mut c = config(Strategy::Random);
    c.max_seconds = Some(0.05);
    let mut ex = explorer(c);
    let outs = explore(&mut ex, &lost_update(3), 1, |_| false).unwrap();
    assert!(outs.len() > 1);
    assert_eq!(ex.stats().stopped_by, Some(StopReason::Budget));

    // Random with no budget at all still stops.
    let mut ex = explorer(config(Strategy::Random));
    let outs = explore(&mut ex, &lost_update(2), 1, |_| false).unwrap();
    assert_eq!(outs.len() as u64, plait_core::DEFAULT_RANDOM_EXECUTIONS);
}

#[test]
fn nondeterminism_is_reported_with_the_decision_index() {
    let mut ex = explorer(config(Strategy::Dfs));
    let mut execution = 0;
    let err = loop {
        match ex.start_execution() {
            Ok(true) => {}
            Ok(false) => panic!("should not finish"),
            Err(e) => break e,
        }
        // Decision 0 and 1 are stable; decision 2's options change in the 2nd execution.
        let r = (|| {
            ex.choose_actor(&[0, 1], None)?;
            ex.choose_actor(&[0, 1], Some(0))?;
            if execution == 0 {
                ex.choose_actor(&[0, 1], Some(0))?;
            } else {
                ex.choose_actor(&[0, 1, 2], Some(0))?;
            }
            ex.choose_actor(&[1], Some(0))
        })();
        execution += 1;
        if let Err(e) = r {
            ex.end_execution(true).unwrap();
            break e;
        }
        ex.end_execution(false).unwrap();
    };
    match &err {
        ExploreError::Nondeterminism { decision, .. } => assert_eq!(*decision, 2),
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("decision 2") && msg.contains("behaved differently"),
        "{msg}"
    );
    assert!(!ex.start_execution().unwrap());
    assert_eq!(ex.stats().stopped_by, Some(StopReason::Error));
}

#[test]
fn nondeterminism_when_the_execution_ends_early() {
    let mut ex = explorer(config(Strategy::Dfs));
    assert!(ex.start_execution().unwrap());
    ex.choose_actor(&[0, 1], None).unwrap();
    ex.choose_actor(&[0, 1], Some(0)).unwrap();
    ex.end_execution(false).unwrap();
    assert!(ex.start_execution().unwrap());
    ex.choose_actor(&[0, 1], None).unwrap();
    let err = ex.end_execution(false).unwrap_err();
    assert!(
        matches!(err, ExploreError::Nondeterminism { decision: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn config_errors_name_the_argument() {
    let e = "bfs".parse::<Strategy>().unwrap_err();
    assert!(
        e.to_string().contains("dfs, dpor, random, pct, replay"),
        "{e}"
    );
    let mut c = config(Strategy::Dfs);
    c.max_executions = Some(0);
    assert!(Explorer::new(c)
        .unwrap_err()
        .to_string()
        .contains("max_executions"));
    let mut c = config(Strategy::Random);
    c.max_seconds = Some(-1.0);
    assert!(Explorer::new(c)
        .unwrap_err()
        .to_string()
        .contains("max_seconds"));
    let mut c = config(Strategy::Pct);
    c.pct_depth = 0;
    assert!(Explorer::new(c)
        .unwrap_err()
        .to_string()
        .contains("pct_depth"));
    assert_eq!(
        Explorer::new(config(Strategy::Replay)).unwrap_err(),
        ConfigError::MissingToken
    );
    let mut c = config(Strategy::Replay);
    c.token = Some("plait1:!!".into());
    assert!(matches!(
        Explorer::new(c).unwrap_err(),
        ConfigError::BadToken(_)
    ));
    let mut c = config(Strategy::Dfs);
    c.token = Some("plait1:AAAA".into());
    assert!(matches!(
        Explorer::new(c).unwrap_err(),
        ConfigError::UnexpectedToken { .. }
    ));
}

#[test]
fn protocol_misuse_is_an_error_not_a_panic() {
    let mut ex = explorer(config(Strategy::Dfs));
    assert!(matches!(
        ex.choose_actor(&[0], None),
        Err(ExploreError::Protocol(_))
    ));
    assert!(matches!(
        ex.end_execution(false),
        Err(ExploreError::Protocol(_))
    ));
    assert!(ex.start_execution().unwrap());
    assert!(matches!(
        ex.start_execution(),
        Err(ExploreError::Protocol(_))
    ));
    assert!(matches!(
        ex.choose_actor(&[], None),
        Err(ExploreError::InvalidArgument(_))
    ));
    assert!(matches!(
        ex.choose(0),
        Err(ExploreError::InvalidArgument(_))
    ));
    ex.record_step(5, &[]);
    ex.end_execution(false).unwrap();
}

#[test]
fn decision_counter_and_trace() {
    let mut ex = explorer(config(Strategy::Dfs));
    assert!(ex.start_execution().unwrap());
    assert_eq!(ex.decision(), 0);
    run_once(&mut ex, &lost_update(2), 1, None).unwrap();
    assert_eq!(ex.decision(), 4);
    let trace = ex.trace();
    assert_eq!(trace.len(), 4);
    let first = trace.get(0).unwrap();
    assert_eq!(first.enabled, &[0, 1]);
    assert_eq!(first.accesses, &[plait_core::Access::read(0)]);
    assert_eq!(trace.get(3).unwrap().enabled, &[1]);
    ex.end_execution(false).unwrap();
}

#[test]
fn long_random_exploration_does_not_accumulate_memory() {
    let mut c = config(Strategy::Random);
    c.max_executions = Some(200_000);
    let mut ex = explorer(c);
    let prog = lost_update(3);
    let mut after_warmup = 0;
    let mut executions = 0u64;
    while ex.start_execution().unwrap() {
        let out = run_once(&mut ex, &prog, 1, None).unwrap();
        ex.end_execution(out.vars[0] != 3).unwrap();
        executions += 1;
        if executions == 1000 {
            after_warmup = ex.retained_bytes();
        }
    }
    let s = ex.stats();
    assert_eq!(s.executions, 200_000);
    assert!(s.failures > 0);
    assert_eq!(s.steps, 200_000 * 6);
    assert!(
        ex.retained_bytes() <= after_warmup,
        "{} > {after_warmup}",
        ex.retained_bytes()
    );
}

#[test]
fn dfs_memory_is_bounded_by_depth() {
    let prog = lost_update(4);
    let mut ex = explorer(config(Strategy::Dfs));
    let mut peak = 0;
    let mut n = 0;
    while ex.start_execution().unwrap() {
        run_once(&mut ex, &prog, 1, None).unwrap();
        ex.end_execution(false).unwrap();
        peak = peak.max(ex.retained_bytes());
        n += 1;
    }
    assert_eq!(n, 2520, "8!/(2!^4)");
    assert!(peak < 4096, "{peak}");
}
