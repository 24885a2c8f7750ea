//! Error types. Each message says what went wrong and what the user can do about it,
//! because these messages reach the Python user unchanged.
//!
//! This module is a leaf: it imports no other module of the crate (the values a message
//! names, such as the accepted strategy names or the token version, travel in the error),
//! so `config` and `token` can depend on it without a cycle.

use std::fmt;

/// A token that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The text does not start with `plait<version>:`.
    NotAToken,
    /// `plaitN:` with an N this build does not know; `known` is the version it reads.
    UnsupportedVersion { got: String, known: u8 },
    /// A character outside the base64url alphabet, at this position in the token text.
    BadBase64 { position: usize },
    /// The payload ends in the middle of a field.
    Truncated { field: &'static str },
    /// The checksum does not match: the token was damaged when copied.
    ChecksumMismatch,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A number in the token does not fit where it goes.
    Overflow { field: &'static str },
    /// A field holds a value that no encoder writes.
    Invalid { field: &'static str, detail: String },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::NotAToken => {
                write!(f, "not a plait token: a token starts with 'plait1:'")
            }
            TokenError::UnsupportedVersion { got, known } => write!(
                f,
                "token version {got} is not supported by this plait (knows version {known})"
            ),
            TokenError::BadBase64 { position } => write!(
                f,
                "the token is damaged: character {position} is not base64url (A-Z a-z 0-9 - _); copy it again"
            ),
            TokenError::Truncated { field } => write!(
                f,
                "the token is truncated (it ends inside the {field}): copy all of it"
            ),
            TokenError::ChecksumMismatch => {
                write!(f, "the token is damaged (checksum mismatch): copy it again")
            }
            TokenError::TrailingBytes => write!(
                f,
                "the token is damaged (unexpected bytes after its end): copy it again"
            ),
            TokenError::Overflow { field } => {
                write!(f, "the token is damaged (the {field} is too large)")
            }
            TokenError::Invalid { field, detail } => {
                write!(f, "the token is damaged (bad {field}: {detail})")
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// A configuration that cannot be explored; names the argument and the accepted values.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// A strategy name that is not one of `known` (the names the engine accepts).
    UnknownStrategy {
        name: String,
        known: &'static [&'static str],
    },
    /// A budget or bound that must be positive was not; `argument` is its Python name.
    NotPositive {
        argument: &'static str,
        value: String,
    },
    /// `strategy="replay"` without a token.
    MissingToken,
    /// A token given with a strategy other than replay (it would be silently ignored).
    UnexpectedToken {
        strategy: &'static str,
    },
    BadToken(TokenError),
    /// Preemption or delay bounds given with strategy dpor.
    BoundWithDpor,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownStrategy { name, known } => write!(
                f,
                "unknown strategy {name:?}: use one of {}",
                known.join(", ")
            ),
            ConfigError::NotPositive { argument, value } => {
                write!(f, "{argument} must be positive, got {value}")
            }
            ConfigError::MissingToken => write!(
                f,
                "strategy 'replay' needs a token: pass token='plait1:...' (printed with the failure)"
            ),
            ConfigError::UnexpectedToken { strategy } => write!(
                f,
                "a token was given with strategy {strategy:?}: use strategy 'replay' to replay it"
            ),
            ConfigError::BadToken(e) => write!(f, "{e}"),
            ConfigError::BoundWithDpor => write!(
                f,
                "preemption_bound and delay_bound do not combine with strategy 'dpor' (bounding \
                 would make its reduction miss schedules): use strategy 'dfs' with a bound"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<TokenError> for ConfigError {
    fn from(e: TokenError) -> Self {
        ConfigError::BadToken(e)
    }
}

/// An error during an exploration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExploreError {
    /// Replaying the same schedule, the program offered different options than before.
    Nondeterminism {
        decision: u64,
        expected: String,
        got: String,
    },
    /// The program did not follow the token being replayed.
    ReplayDivergence { decision: u64, detail: String },
    /// An argument the engine cannot act on (an empty runnable list, `choose(0)`).
    InvalidArgument(String),
    /// Calls in an order the engine does not expect (a decision outside an execution).
    Protocol(String),
}

impl fmt::Display for ExploreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExploreError::Nondeterminism {
                decision,
                expected,
                got,
            } => write!(
                f,
                "the program behaved differently under the same schedule at decision {decision}: \
                 expected {expected}, got {got}. Something plait does not control changes the \
                 program's behaviour between executions (time, randomness not seeded from the \
                 execution seed, I/O, uncontrolled threads, or state left over from an earlier \
                 execution)"
            ),
            ExploreError::ReplayDivergence { decision, detail } => write!(
                f,
                "the replay diverged from the token at decision {decision}: {detail}. The code \
                 or its environment changed since the token was recorded, or the program is \
                 nondeterministic outside plait's control"
            ),
            ExploreError::InvalidArgument(m) | ExploreError::Protocol(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ExploreError {}
