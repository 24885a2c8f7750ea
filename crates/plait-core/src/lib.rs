//! plait's engine: it decides, at every scheduling point of a Python program, which actor
//! runs next (or which way a recorded choice goes), and turns schedules into tokens.
//!
//! The engine never calls back into Python: Python asks, the engine answers. That keeps the
//! engine testable on its own (see `tests/`), and the GIL story simple.

pub mod config;
pub mod dpor;
pub mod error;
pub mod explore;
pub mod footprint;
pub mod rng;
pub mod scheduler;
pub mod stats;
pub mod token;

pub use config::{ExplorerConfig, Strategy, DEFAULT_RANDOM_EXECUTIONS};
pub use error::{ConfigError, ExploreError, TokenError};
pub use explore::Explorer;
pub use footprint::{Access, AccessKind};
pub use stats::{Stats, StopReason};
pub use token::{decode_token, encode_token, Deviation, Token};
