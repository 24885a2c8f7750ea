//! The exploration driver: runs a strategy execution after execution, enforces the budget
//! and stop-on-first-failure, records each execution's schedule for its token, and keeps
//! statistics. Python drives it call by call; nothing here grows with the number of
//! executions.

use std::fmt;
use std::time::Instant;

use crate::config::{ExplorerConfig, Strategy, DEFAULT_RANDOM_EXECUTIONS};
use crate::error::{ConfigError, ExploreError};
use crate::footprint::{Access, Trace};
use crate::rng::mix;
use crate::scheduler::{
    default_actor, DfsScheduler, DporScheduler, PctScheduler, RandomScheduler, ReplayScheduler,
    Scheduler,
};
use crate::stats::{Stats, StopReason};
use crate::token::{decode_token, encode_token, Deviation, Token};

/// Drives one exploration. Use: `while start_execution()? { run the program, asking
/// choose_actor/choose at each scheduling point and reporting record_step; end_execution }`.
pub struct Explorer {
    strategy: Strategy,
    seed: u64,
    /// Random and PCT: execution `k` of this explorer is number `offset + stride * k` of
    /// the seed sequence.
    execution_offset: u64,
    execution_stride: u64,
    max_executions: Option<u64>,
    max_seconds: Option<f64>,
    stop_on_first: bool,
    settings: Vec<u8>,
    python_version: (u8, u8),
    /// Strategy byte written into tokens (a replay keeps the original's).
    token_strategy: u8,
    scheduler: Box<dyn Scheduler + Send + Sync>,

    in_execution: bool,
    /// Executions started so far; the index of the current one is `started - 1`.
    started: u64,
    /// Decisions made in the current (or last) execution: the index of the next one.
    decision: u64,
    execution_seed: u64,
    /// Deviations from the default schedule in the current (or last) execution.
    deviations: Vec<Deviation>,
    /// The runnable list of the latest actor decision: the enabled set of the next step.
    enabled: Vec<u32>,
    trace: Trace,
    /// First engine error; once set, the exploration is over.
    error: Option<ExploreError>,

    executions: u64,
    failures: u64,
    steps: u64,
    max_decisions: u64,
    exhausted: bool,
    stopped_by: Option<StopReason>,
    start: Instant,
}

impl fmt::Debug for Explorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Explorer")
            .field("strategy", &self.strategy)
            .field("started", &self.started)
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

impl Explorer {
    pub fn new(config: ExplorerConfig) -> Result<Explorer, ConfigError> {
        if config.max_executions == Some(0) {
            return Err(ConfigError::NotPositive {
                argument: "max_executions",
                value: "0".into(),
            });
        }
        if let Some(s) = config.max_seconds {
            // `!(s > 0)` also refuses NaN.
            if s.is_nan() || s <= 0.0 {
                return Err(ConfigError::NotPositive {
                    argument: "max_seconds",
                    value: format!("{s}"),
                });
            }
        }
        if config.execution_stride == 0 {
            return Err(ConfigError::NotPositive {
                argument: "execution_stride",
                value: "0".into(),
            });
        }
        if config.pct_depth == 0 {
            return Err(ConfigError::NotPositive {
                argument: "pct_depth",
                value: "0".into(),
            });
        }
        let mut settings = config.settings;
        let mut python_version = config.python_version;
        let mut token_strategy = config.strategy.code();
        let mut max_executions = config.max_executions;
        let scheduler: Box<dyn Scheduler + Send + Sync> = match (config.strategy, &config.token) {
            (Strategy::Replay, None) => return Err(ConfigError::MissingToken),
            (Strategy::Replay, Some(text)) => {
                let token = decode_token(text)?;
                settings.clone_from(&token.settings);
                python_version = token.python_version;
                token_strategy = token.strategy;
                Box::new(ReplayScheduler::new(&token))
            }
            (s, Some(_)) => return Err(ConfigError::UnexpectedToken { strategy: s.name() }),
            (Strategy::Dfs, None) => Box::new(DfsScheduler::new(
                config.preemption_bound,
                config.delay_bound,
            )),
            (Strategy::Dpor, None) => {
                if config.preemption_bound.is_some() || config.delay_bound.is_some() {
                    return Err(ConfigError::BoundWithDpor);
                }
                Box::new(DporScheduler::new())
            }
            (Strategy::Random, None) => Box::new(RandomScheduler::new()),
            (Strategy::Pct, None) => Box::new(PctScheduler::new(config.pct_depth)),
        };
        let unbounded_strategy = matches!(config.strategy, Strategy::Random | Strategy::Pct);
        if unbounded_strategy && max_executions.is_none() && config.max_seconds.is_none() {
            max_executions = Some(DEFAULT_RANDOM_EXECUTIONS);
        }
        let execution_seed = match (&config.token, config.strategy) {
            (Some(text), Strategy::Replay) => decode_token(text)?.seed,
            _ => config.seed,
        };
        Ok(Explorer {
            strategy: config.strategy,
            seed: config.seed,
            execution_offset: config.execution_offset,
            execution_stride: config.execution_stride,
            max_executions,
            max_seconds: config.max_seconds,
            stop_on_first: config.stop_on_first,
            settings,
            python_version,
            token_strategy,
            scheduler,
            in_execution: false,
            started: 0,
            decision: 0,
            execution_seed,
            deviations: Vec::new(),
            enabled: Vec::new(),
            trace: Trace::default(),
            error: None,
            executions: 0,
            failures: 0,
            steps: 0,
            max_decisions: 0,
            exhausted: false,
            stopped_by: None,
            start: Instant::now(),
        })
    }

    /// Starts the next execution; false when the exploration is over (exhausted, budget
    /// spent, a failure with `stop_on_first`, or an earlier engine error).
    pub fn start_execution(&mut self) -> Result<bool, ExploreError> {
        if self.in_execution {
            return Err(ExploreError::Protocol(format!(
                "start_execution called while execution {} is still running: call \
                 end_execution first",
                self.started - 1
            )));
        }
        if self.stopped_by.is_some() {
            return Ok(false);
        }
        if self.stop_on_first && self.failures > 0 {
            return Ok(self.stop(StopReason::Failure));
        }
        if self.max_executions.is_some_and(|m| self.started >= m)
            || self
                .max_seconds
                .is_some_and(|s| self.start.elapsed().as_secs_f64() >= s)
        {
            return Ok(self.stop(StopReason::Budget));
        }
        let seed = match self.strategy {
            Strategy::Dfs | Strategy::Dpor => self.seed,
            Strategy::Random | Strategy::Pct => mix(
                self.seed,
                self.execution_offset
                    .wrapping_add(self.execution_stride.wrapping_mul(self.started)),
            ),
            Strategy::Replay => self.execution_seed,
        };
        if !self.scheduler.new_execution(seed) {
            self.exhausted = true;
            return Ok(self.stop(StopReason::Exhausted));
        }
        self.execution_seed = seed;
        self.started += 1;
        self.in_execution = true;
        self.decision = 0;
        self.deviations.clear();
        self.enabled.clear();
        self.trace.clear();
        Ok(true)
    }

    fn stop(&mut self, reason: StopReason) -> bool {
        self.stopped_by = Some(reason);
        false
    }

    fn check_running(&self, what: &str) -> Result<(), ExploreError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if !self.in_execution {
            return Err(ExploreError::Protocol(format!(
                "{what} called outside an execution: call start_execution first"
            )));
        }
        Ok(())
    }

    fn fail(&mut self, e: ExploreError) -> ExploreError {
        self.error = Some(e.clone());
        self.stopped_by = Some(StopReason::Error);
        e
    }

    /// Picks the actor that runs next among `runnable` (non-empty, in default order);
    /// `current` is the actor that ran the previous step, if any.
    pub fn choose_actor(
        &mut self,
        runnable: &[u32],
        current: Option<u32>,
    ) -> Result<u32, ExploreError> {
        self.check_running("choose_actor")?;
        if runnable.is_empty() {
            return Err(ExploreError::InvalidArgument(
                "choose_actor needs at least one runnable actor".into(),
            ));
        }
        let chosen = match self.scheduler.next_actor(self.decision, runnable, current) {
            Ok(a) => a,
            Err(e) => return Err(self.fail(e)),
        };
        if chosen != default_actor(runnable, current) {
            self.deviations.push(Deviation {
                decision: self.decision,
                value: chosen,
            });
        }
        self.enabled.clear();
        self.enabled.extend_from_slice(runnable);
        self.decision += 1;
        Ok(chosen)
    }

    /// A recorded non-scheduling choice in `0..n` (n ≥ 1); the default is 0.
    pub fn choose(&mut self, n: u32) -> Result<u32, ExploreError> {
        self.check_running("choose")?;
        if n == 0 {
            return Err(ExploreError::InvalidArgument(
                "choose needs at least one option (n >= 1)".into(),
            ));
        }
        let k = match self.scheduler.next_choice(self.decision, n) {
            Ok(k) => k,
            Err(e) => return Err(self.fail(e)),
        };
        if k != 0 {
            self.deviations.push(Deviation {
                decision: self.decision,
                value: k,
            });
        }
        self.decision += 1;
        Ok(k)
    }

    /// The footprint of the step `actor` just ran.
    pub fn record_step(&mut self, actor: u32, accesses: &[Access]) {
        if !self.in_execution || self.error.is_some() {
            return;
        }
        self.trace.push(actor, &self.enabled, accesses);
        self.scheduler.record_step(actor, &self.enabled, accesses);
    }

    /// Ends the current execution; `failed` says whether the test body failed in it.
    pub fn end_execution(&mut self, failed: bool) -> Result<(), ExploreError> {
        if !self.in_execution {
            return Err(ExploreError::Protocol(
                "end_execution called outside an execution: call start_execution first".into(),
            ));
        }
        self.in_execution = false;
        self.executions += 1;
        self.failures += u64::from(failed);
        self.steps += self.decision;
        self.max_decisions = self.max_decisions.max(self.decision);
        if self.error.is_some() {
            // The error was already raised at the decision; ending quietly lets Python
            // clean up in a `finally`.
            return Ok(());
        }
        if let Err(e) = self.scheduler.end_execution(self.decision) {
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// The schedule of the current (or last finished) execution.
    pub fn schedule(&self) -> Token {
        Token {
            strategy: self.token_strategy,
            python_version: self.python_version,
            seed: self.execution_seed,
            decisions: self.decision,
            settings: self.settings.clone(),
            deviations: self.deviations.clone(),
        }
    }

    /// The token of the current (or last finished) execution.
    pub fn token(&self) -> String {
        encode_token(&self.schedule())
    }

    /// The seed of the current execution (Python seeds `random` with it).
    pub fn execution_seed(&self) -> u64 {
        self.execution_seed
    }

    /// Index of the next decision in the current execution.
    pub fn decision(&self) -> u64 {
        self.decision
    }

    /// The settings in force (in replay, the token's).
    pub fn settings(&self) -> &[u8] {
        &self.settings
    }

    /// The steps recorded so far in the current (or last) execution.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Heap bytes the explorer keeps between executions. It depends on the longest
    /// execution, never on how many executions ran (tests check this).
    pub fn retained_bytes(&self) -> usize {
        self.deviations.capacity() * std::mem::size_of::<Deviation>()
            + self.enabled.capacity() * 4
            + self.settings.capacity()
            + self.trace.retained_bytes()
            + self.scheduler.retained_bytes()
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn stats(&self) -> Stats {
        Stats {
            executions: self.executions,
            failures: self.failures,
            exhausted: self.exhausted,
            bounded: self.scheduler.bounded(),
            steps: self.steps,
            max_decisions: self.max_decisions,
            redundant: self.scheduler.redundant(),
            elapsed_seconds: self.start.elapsed().as_secs_f64(),
            strategy: self.strategy.name(),
            stopped_by: self.stopped_by,
        }
    }
}
