//! A tiny interpreter of synthetic concurrent programs, driven through the `Explorer` the
//! way plait's Python side drives it: one decision per scheduling point, then the step's
//! footprint.

// Each test binary uses part of this module; test code may cast small counts freely.
#![allow(dead_code, clippy::cast_possible_wrap)]

use plait_core::{Access, ExploreError, Explorer};

/// One atomic step of an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `reg = vars[v]`
    Load(usize),
    /// `vars[v] = reg + 1`
    StoreInc(usize),
    /// `vars[v] = value`
    Store(usize, i64),
    /// Take lock `l` (the actor is not runnable while another actor holds it).
    Lock(usize),
    Unlock(usize),
    /// A recorded choice among `n`; adds the chosen index to `vars[0]`.
    Choose(u32),
}

pub type Program = Vec<Vec<Op>>;

/// Keys: variables are 0..; locks are 1000 + l.
const LOCK_KEY_BASE: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub vars: Vec<i64>,
    /// The actor chosen at each actor decision.
    pub schedule: Vec<u32>,
    /// The values of each actor's recorded choices, in its program order.
    pub choices: Vec<Vec<u32>>,
}

/// Runs one execution of `program` (the caller has called `start_execution`).
/// `first_current` is the actor treated as running before the first decision.
pub fn run_once(
    ex: &mut Explorer,
    program: &Program,
    nvars: usize,
    first_current: Option<u32>,
) -> Result<Outcome, ExploreError> {
    let n = program.len();
    let mut pc = vec![0usize; n];
    let mut reg = vec![0i64; n];
    let mut vars = vec![0i64; nvars];
    let mut locks: Vec<Option<usize>> = vec![None; 8];
    let mut current = first_current;
    let mut schedule = Vec::new();
    let mut choices = vec![Vec::new(); n];
    let mut runnable = Vec::with_capacity(n);
    loop {
        runnable.clear();
        for a in 0..n {
            match program[a].get(pc[a]) {
                None => {}
                Some(Op::Lock(l)) if locks[*l].is_some_and(|h| h != a) => {}
                Some(_) => runnable.push(a as u32),
            }
        }
        if runnable.is_empty() {
            break;
        }
        let a = ex.choose_actor(&runnable, current)?;
        schedule.push(a);
        let ai = a as usize;
        let op = program[ai][pc[ai]];
        pc[ai] += 1;
        let access = match op {
            Op::Load(v) => {
                reg[ai] = vars[v];
                Access::read(v as u64)
            }
            Op::StoreInc(v) => {
                vars[v] = reg[ai] + 1;
                Access::write(v as u64)
            }
            Op::Store(v, x) => {
                vars[v] = x;
                Access::write(v as u64)
            }
            Op::Lock(l) => {
                locks[l] = Some(ai);
                Access::write(LOCK_KEY_BASE + l as u64)
            }
            Op::Unlock(l) => {
                locks[l] = None;
                Access::write(LOCK_KEY_BASE + l as u64)
            }
            Op::Choose(k) => {
                let c = ex.choose(k)?;
                choices[ai].push(c);
                vars[0] += i64::from(c);
                Access::write(0)
            }
        };
        ex.record_step(a, &[access]);
        current = Some(a);
    }
    Ok(Outcome {
        vars,
        schedule,
        choices,
    })
}

/// Explores `program` to the end; `is_bug` decides whether an outcome fails.
/// Returns the outcomes of all executions.
pub fn explore(
    ex: &mut Explorer,
    program: &Program,
    nvars: usize,
    is_bug: impl Fn(&Outcome) -> bool,
) -> Result<Vec<Outcome>, ExploreError> {
    let mut outs = Vec::new();
    while ex.start_execution()? {
        let out = run_once(ex, program, nvars, None)?;
        let failed = is_bug(&out);
        ex.end_execution(failed)?;
        outs.push(out);
    }
    Ok(outs)
}

/// `actors` actors each doing `x = x + 1` as a load then a store.
pub fn lost_update(actors: usize) -> Program {
    vec![vec![Op::Load(0), Op::StoreInc(0)]; actors]
}

pub fn lost_update_bug(actors: usize) -> impl Fn(&Outcome) -> bool {
    move |o: &Outcome| o.vars[0] != actors as i64
}

/// The access of `op` (as `run_once` reports it).
pub fn access_of(op: Op) -> Access {
    match op {
        Op::Load(v) => Access::read(v as u64),
        Op::StoreInc(v) | Op::Store(v, _) => Access::write(v as u64),
        Op::Lock(l) | Op::Unlock(l) => Access::write(LOCK_KEY_BASE + l as u64),
        Op::Choose(_) => Access::write(0),
    }
}

/// A canonical representative of the Mazurkiewicz trace of `schedule`: the
/// lexicographically least (by actor id) schedule that orders every pair of dependent
/// steps (same actor, or conflicting accesses) the same way.
pub fn canonical(program: &Program, schedule: &[u32]) -> Vec<u32> {
    let mut pc = vec![0usize; program.len()];
    let events: Vec<(u32, Access)> = schedule
        .iter()
        .map(|&a| {
            let op = program[a as usize][pc[a as usize]];
            pc[a as usize] += 1;
            (a, access_of(op))
        })
        .collect();
    let n = events.len();
    let preds: Vec<Vec<usize>> = (0..n)
        .map(|k| {
            (0..k)
                .filter(|&i| events[i].0 == events[k].0 || events[i].1.conflicts_with(&events[k].1))
                .collect()
        })
        .collect();
    let mut done = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = (0..n)
            .filter(|&k| !done[k] && preds[k].iter().all(|&i| done[i]))
            .min_by_key(|&k| events[k].0)
            .expect("a dependency graph of a schedule is acyclic");
        done[next] = true;
        out.push(events[next].0);
    }
    out
}
