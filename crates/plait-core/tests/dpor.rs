//! The dpor strategy: it explores every Mazurkiewicz trace (checked against brute force
//! on random programs), and close to one execution per trace.

mod common;

use std::collections::BTreeSet;

use common::{canonical, explore, lost_update, lost_update_bug, run_once, Op, Outcome, Program};
use plait_core::rng::Rng;
use plait_core::{decode_token, ConfigError, Explorer, ExplorerConfig, Strategy};

fn run(strategy: Strategy, program: &Program, nvars: usize) -> (Vec<Vec<u32>>, Explorer) {
    let (outs, ex) = run_outcomes(strategy, program, nvars);
    (outs.into_iter().map(|o| o.schedule).collect(), ex)
}

fn run_outcomes(strategy: Strategy, program: &Program, nvars: usize) -> (Vec<Outcome>, Explorer) {
    let mut ex = Explorer::new(ExplorerConfig {
        strategy,
        stop_on_first: false,
        ..ExplorerConfig::default()
    })
    .unwrap();
    let outs = explore(&mut ex, program, nvars, |_| false).unwrap();
    (outs, ex)
}

fn traces(program: &Program, schedules: &[Vec<u32>]) -> BTreeSet<Vec<u32>> {
    schedules.iter().map(|s| canonical(program, s)).collect()
}

#[test]
fn lost_update_counters_hit_the_trace_counts() {
    // Optimal DPOR: exactly one execution per trace ((2n)! / 2^n), none sleep-set blocked.
    let sizes: &[(usize, usize)] = if cfg!(debug_assertions) {
        &[(2, 4), (3, 36), (4, 576)]
    } else {
        &[(2, 4), (3, 36), (4, 576), (5, 14_400)]
    };
    for &(actors, expected) in sizes {
        let prog = lost_update(actors);
        let (schedules, ex) = run(Strategy::Dpor, &prog, 1);
        assert_eq!(schedules.len(), expected, "{actors} actors");
        assert_eq!(traces(&prog, &schedules).len(), expected);
        assert_eq!(ex.stats().redundant, 0);
        assert!(ex.stats().exhausted);
    }
}

#[test]
fn disjoint_variables_need_one_execution() {
    let prog: Program = (0..4).map(|v| vec![Op::Load(v), Op::StoreInc(v)]).collect();
    assert_eq!(run(Strategy::Dpor, &prog, 4).0.len(), 1);
}

#[test]
fn writer_and_three_readers_need_eight() {
    let mut prog: Program = vec![vec![Op::Store(0, 1)]];
    prog.extend((0..3).map(|_| vec![Op::Load(0)]));
    assert_eq!(run(Strategy::Dpor, &prog, 1).0.len(), 8);
}

#[test]
fn dpor_finds_and_replays_the_lost_update() {
    let prog = lost_update(3);
    let mut ex = Explorer::new(ExplorerConfig {
        strategy: Strategy::Dpor,
        ..ExplorerConfig::default()
    })
    .unwrap();
    let outs = explore(&mut ex, &prog, 1, lost_update_bug(3)).unwrap();
    assert_eq!(ex.stats().failures, 1);
    let token = ex.token();
    assert_eq!(decode_token(&token).unwrap().strategy, 4);
    let mut rex = Explorer::new(ExplorerConfig {
        strategy: Strategy::Replay,
        token: Some(token),
        ..ExplorerConfig::default()
    })
    .unwrap();
    let replayed = explore(&mut rex, &prog, 1, lost_update_bug(3)).unwrap();
    assert_eq!(replayed, vec![outs.last().unwrap().clone()]);
}

#[test]
fn bounds_are_refused_with_dpor() {
    let e = Explorer::new(ExplorerConfig {
        strategy: Strategy::Dpor,
        preemption_bound: Some(1),
        ..ExplorerConfig::default()
    })
    .unwrap_err();
    assert_eq!(e, ConfigError::BoundWithDpor);
}

#[test]
fn locks_serialise_critical_sections() {
    // Two actors increment under one lock: 2 traces (who locks first), never a lost update.
    let locked: Vec<Op> = vec![Op::Lock(0), Op::Load(0), Op::StoreInc(0), Op::Unlock(0)];
    let prog = vec![locked.clone(), locked];
    let (schedules, _) = run(Strategy::Dpor, &prog, 1);
    let (all, _) = run(Strategy::Dfs, &prog, 1);
    assert_eq!(traces(&prog, &schedules), traces(&prog, &all));
    assert_eq!(schedules.len(), 2);
}

fn random_program(rng: &mut Rng, with_locks: bool) -> (Program, usize) {
    random_program_sized(rng, with_locks, 3, 3)
}

/// 2..=`max_actors` actors of 1..=`max_len` reads and writes (plus a lock section).
fn random_program_sized(
    rng: &mut Rng,
    with_locks: bool,
    max_actors: u64,
    max_len: u64,
) -> (Program, usize) {
    let actors = 2 + rng.below(max_actors - 1) as usize;
    let nvars = 1 + rng.below(3) as usize;
    let mut prog = Vec::new();
    for _ in 0..actors {
        let len = 1 + rng.below(max_len) as usize;
        let mut ops: Vec<Op> = (0..len)
            .map(|_| {
                let v = rng.below(nvars as u64) as usize;
                if rng.below(2) == 0 {
                    Op::Load(v)
                } else {
                    Op::Store(v, 1)
                }
            })
            .collect();
        if with_locks && rng.below(2) == 0 {
            let l = rng.below(2) as usize;
            let at = rng.below(ops.len() as u64) as usize;
            let end = at + 1 + rng.below((ops.len() - at) as u64) as usize;
            ops.insert(end, Op::Unlock(l));
            ops.insert(at, Op::Lock(l));
        }
        prog.push(ops);
    }
    (prog, nvars)
}

/// Totals of a differential run.
#[derive(Debug, Default)]
struct Totals {
    programs: u64,
    traces: usize,
    executions: usize,
    /// Executions the engine counted as redundant (sleep-set blocked).
    redundant: u64,
    /// Executions not counted as redundant that still repeated a trace.
    uncounted_repeats: usize,
}

/// Explores `program` with dpor, returning each execution's schedule and whether the
/// engine counted it as redundant.
fn run_dpor_flagged(program: &Program, nvars: usize) -> Vec<(Vec<u32>, bool)> {
    let mut ex = Explorer::new(ExplorerConfig {
        strategy: Strategy::Dpor,
        stop_on_first: false,
        ..ExplorerConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    while ex.start_execution().unwrap() {
        let before = ex.stats().redundant;
        let o = run_once(&mut ex, program, nvars, None).unwrap();
        ex.end_execution(false).unwrap();
        out.push((o.schedule, ex.stats().redundant > before));
    }
    assert!(ex.stats().exhausted);
    out
}

/// Checks dpor against brute force (dfs) on random programs: every trace is reached by an
/// execution not counted as redundant (so redundant ones are never needed). With `exact`,
/// also one execution per trace and none redundant, program by program.
/// `PLAIT_DPOR_PROGRAMS` and `PLAIT_DPOR_SEED` widen the search when changing the engine.
fn differential(
    with_locks: bool,
    programs: u64,
    (max_actors, max_len, max_ops): (u64, u64, usize),
    exact: bool,
) -> Totals {
    let programs = std::env::var("PLAIT_DPOR_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            programs / 4
        } else {
            programs
        });
    let seed: u64 = std::env::var("PLAIT_DPOR_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut rng = Rng::new(seed + (max_actors - 3) * 100 + if with_locks { 11 } else { 7 });
    let mut t = Totals::default();
    while t.programs < programs {
        let (prog, nvars) = random_program_sized(&mut rng, with_locks, max_actors, max_len);
        if prog.iter().map(Vec::len).sum::<usize>() > max_ops {
            continue;
        }
        let n = t.programs;
        t.programs += 1;
        let (all, _) = run(Strategy::Dfs, &prog, nvars);
        let reduced = run_dpor_flagged(&prog, nvars);
        let expected = traces(&prog, &all);
        let useful: Vec<Vec<u32>> = reduced
            .iter()
            .filter(|(_, r)| !r)
            .map(|(s, _)| s.clone())
            .collect();
        let got = traces(&prog, &useful);
        assert_eq!(got, expected, "program {n} missed traces: {prog:?}");
        let redundant = reduced.len() - useful.len();
        if exact {
            assert_eq!(
                (reduced.len(), redundant),
                (expected.len(), 0),
                "program {n} is not explored optimally: {prog:?}"
            );
        }
        t.traces += expected.len();
        t.executions += reduced.len();
        t.redundant += redundant as u64;
        t.uncounted_repeats += useful.len() - got.len();
    }
    t
}

#[test]
fn differential_against_brute_force_read_write() {
    // Lock-free read/write programs: optimal DPOR explores exactly one execution per trace.
    let t = differential(false, 400, (3, 3, usize::MAX), true);
    println!("read/write: {t:?}");
    assert_eq!((t.executions, t.redundant), (t.traces, 0));
    assert!(t.traces > 1000, "the random programs should not be trivial");
    let t = differential(false, 300, (4, 3, 8), true);
    println!("read/write, up to 4 actors: {t:?}");
    assert_eq!((t.executions, t.redundant), (t.traces, 0));
}

#[test]
fn differential_against_brute_force_with_locks() {
    // Blocking makes some executions redundant (counted) and a few repeat a trace
    // without being sleep-set blocked; no trace may be missed.
    let t = differential(true, 400, (3, 3, usize::MAX), false);
    println!("locks: {t:?}");
    assert!(t.executions >= t.traces);
    let t = differential(true, 200, (4, 3, 9), false);
    println!("locks, up to 4 actors: {t:?}");
}

#[test]
fn differential_against_brute_force_with_choices() {
    // A step that makes a recorded choice is dependent with everything: every (trace,
    // choice values) pair must still be reached.
    let seed: u64 = std::env::var("PLAIT_DPOR_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut rng = Rng::new(seed + 5);
    let (mut total, mut executions) = (0, 0);
    let programs = std::env::var("PLAIT_DPOR_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 50 } else { 200 });
    for n in 0..programs {
        let (mut prog, nvars) = random_program(&mut rng, n % 2 == 0);
        let a = rng.below(prog.len() as u64) as usize;
        let at = rng.below(prog[a].len() as u64 + 1) as usize;
        prog[a].insert(at, Op::Choose(2 + rng.below(2) as u32));
        let key = |o: &Outcome| (canonical(&prog, &o.schedule), o.choices.clone());
        let (all, _) = run_outcomes(Strategy::Dfs, &prog, nvars.max(1));
        let (reduced, _) = run_outcomes(Strategy::Dpor, &prog, nvars.max(1));
        let expected: BTreeSet<_> = all.iter().map(key).collect();
        let got: BTreeSet<_> = reduced.iter().map(key).collect();
        assert_eq!(got, expected, "program {n} missed traces: {prog:?}");
        total += expected.len();
        executions += reduced.len();
    }
    println!("choices: {total} traces, {executions} executions");
}

#[test]
fn steps_without_footprints_are_not_reduced_away() {
    // A program that never calls record_step must be explored fully, not as one schedule.
    let mut ex = Explorer::new(ExplorerConfig {
        strategy: Strategy::Dpor,
        stop_on_first: false,
        ..ExplorerConfig::default()
    })
    .unwrap();
    let mut schedules = BTreeSet::new();
    while ex.start_execution().unwrap() {
        let mut left = [2u32, 2];
        let mut current = None;
        let mut schedule = Vec::new();
        while left.iter().any(|&l| l > 0) {
            let runnable: Vec<u32> = (0..2).filter(|&a| left[a as usize] > 0).collect();
            let a = ex.choose_actor(&runnable, current).unwrap();
            left[a as usize] -= 1;
            schedule.push(a);
            current = Some(a);
        }
        ex.end_execution(false).unwrap();
        schedules.insert(schedule);
    }
    assert_eq!(schedules.len(), 6);
}

#[test]
fn memory_is_bounded_by_the_exploration_stack() {
    // The wakeup trees only hold what is still planned along the current path: the peak
    // does not grow with the number of executions.
    let prog = lost_update(4);
    let mut ex = Explorer::new(ExplorerConfig {
        strategy: Strategy::Dpor,
        stop_on_first: false,
        ..ExplorerConfig::default()
    })
    .unwrap();
    let (mut peak, mut n) = (0, 0);
    while ex.start_execution().unwrap() {
        run_once(&mut ex, &prog, 1, None).unwrap();
        ex.end_execution(false).unwrap();
        peak = peak.max(ex.retained_bytes());
        n += 1;
    }
    assert_eq!(n, 576);
    println!("peak retained bytes: {peak}");
    assert!(peak < 64 * 1024, "{peak}");
}
