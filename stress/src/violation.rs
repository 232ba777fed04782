//! A broken guarantee, as the runner and the checker report it.

use std::fmt;

use bypass_reports::schema::ViolationKind;
use serde::Serialize;

/// A broken guarantee.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Violation {
    /// Which guarantee.
    pub kind: ViolationKind,
    /// The token, if the violation is about one.
    pub token: Option<u64>,
    /// What was seen.
    pub message: String,
    /// The token's calls as a replay trace, in the order they started, where one can be made.
    pub trace: Option<String>,
}

impl Violation {
    pub(crate) fn new(kind: ViolationKind, token: Option<u64>, message: String) -> Violation {
        Violation {
            kind,
            token,
            message,
            trace: None,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.token {
            Some(t) => write!(f, "{} (token {t}): {}", self.kind, self.message)?,
            None => write!(f, "{}: {}", self.kind, self.message)?,
        }
        if let Some(trace) = &self.trace {
            write!(
                f,
                "\n  a trace of the token's calls (replay it with `bypass replay`):"
            )?;
            for line in trace.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}
