//! What an exploration is configured with: the strategy and its knobs, mirrored 1:1 by the
//! Python constructor.

use std::str::FromStr;

use crate::error::ConfigError;

/// Executions a random or PCT exploration runs when given no budget at all (they never
/// run out on their own).
pub const DEFAULT_RANDOM_EXECUTIONS: u64 = 1000;

/// Which strategy picks the schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Dfs,
    Dpor,
    Random,
    Pct,
    Replay,
}

impl Strategy {
    /// The accepted names, in the order error messages list them.
    pub const NAMES: &'static [&'static str] = &["dfs", "dpor", "random", "pct", "replay"];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Dfs => "dfs",
            Strategy::Dpor => "dpor",
            Strategy::Random => "random",
            Strategy::Pct => "pct",
            Strategy::Replay => "replay",
        }
    }

    /// The strategy's byte in a token.
    pub fn code(self) -> u8 {
        match self {
            Strategy::Dfs => 0,
            Strategy::Random => 1,
            Strategy::Pct => 2,
            Strategy::Replay => 3,
            Strategy::Dpor => 4,
        }
    }

    /// Name of a token's strategy byte ("unknown" for a code this build does not know).
    pub fn name_of_code(code: u8) -> &'static str {
        match code {
            0 => "dfs",
            1 => "random",
            2 => "pct",
            3 => "replay",
            4 => "dpor",
            _ => "unknown",
        }
    }
}

impl FromStr for Strategy {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dfs" => Ok(Strategy::Dfs),
            "dpor" => Ok(Strategy::Dpor),
            "random" => Ok(Strategy::Random),
            "pct" => Ok(Strategy::Pct),
            "replay" => Ok(Strategy::Replay),
            other => Err(ConfigError::UnknownStrategy {
                name: other.to_string(),
                known: Strategy::NAMES,
            }),
        }
    }
}

/// Everything an exploration is configured with (mirrors the Python constructor).
#[derive(Debug, Clone)]
pub struct ExplorerConfig {
    pub strategy: Strategy,
    pub seed: u64,
    pub max_executions: Option<u64>,
    pub max_seconds: Option<f64>,
    pub preemption_bound: Option<u32>,
    pub delay_bound: Option<u32>,
    pub pct_depth: u32,
    pub stop_on_first: bool,
    /// Required with `Strategy::Replay`, refused otherwise.
    pub token: Option<String>,
    /// Opaque, Python-defined; stored in tokens. In replay, the token's settings win.
    pub settings: Vec<u8>,
    pub python_version: (u8, u8),
    /// Random and PCT: this explorer runs executions `offset, offset + stride, ...` of the
    /// seed sequence (several workers splitting one exploration's seeds); 0 and 1 alone.
    pub execution_offset: u64,
    pub execution_stride: u64,
}

impl Default for ExplorerConfig {
    fn default() -> Self {
        ExplorerConfig {
            strategy: Strategy::Dfs,
            seed: 0,
            max_executions: None,
            max_seconds: None,
            preemption_bound: None,
            delay_bound: None,
            pct_depth: 3,
            stop_on_first: true,
            token: None,
            settings: Vec::new(),
            python_version: (3, 11),
            execution_offset: 0,
            execution_stride: 1,
        }
    }
}
