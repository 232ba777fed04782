//! Typed outcomes of the registry's calls. Each error names its [`ErrorKind`], the word a
//! trace prints for it.

use std::error::Error;
use std::fmt;

use crate::participant::CallbackError;

/// The kinds of error of the contract, with the names traces print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// `invalid-token`: the token is zero.
    InvalidToken,
    /// `duplicate`: that side of the token is taken (upstream's `-EBUSY`).
    Duplicate,
    /// `not-registered`: nothing is registered on that side of the token.
    NotRegistered,
    /// `connect-failed`: an `add_*` callback refused the connection.
    ConnectFailed,
    /// `reentrant`: a callback called into the registry where that would deadlock or break
    /// per-token exclusion.
    Reentrant,
}

impl ErrorKind {
    /// Every kind, in the order of the contract.
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::InvalidToken,
        ErrorKind::Duplicate,
        ErrorKind::NotRegistered,
        ErrorKind::ConnectFailed,
        ErrorKind::Reentrant,
    ];

    /// The trace name: `invalid-token`, `duplicate`, `not-registered`, `connect-failed`,
    /// `reentrant`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidToken => "invalid-token",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::NotRegistered => "not-registered",
            ErrorKind::ConnectFailed => "connect-failed",
            ErrorKind::Reentrant => "reentrant",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A zero token was given; tokens are never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidToken;

impl InvalidToken {
    /// Always [`ErrorKind::InvalidToken`].
    pub const fn kind(self) -> ErrorKind {
        ErrorKind::InvalidToken
    }
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid token: a token is never zero")
    }
}

impl Error for InvalidToken {}

/// Why a registration was refused. It hands back the participant, which the registry did not
/// keep.
///
/// ```
/// use std::sync::Arc;
/// use bypass_registry::{ErrorKind, RegisterError};
/// let e = RegisterError::Duplicate(Arc::new(5));
/// assert_eq!(e.kind(), ErrorKind::Duplicate);
/// assert_eq!(*e.into_participant(), 5);
/// ```
pub enum RegisterError<T> {
    /// This side of the token is taken; the registered participant is untouched and no
    /// callback ran.
    Duplicate(T),
    /// A participant of the other side is registered and the connect failed: an `add_*`
    /// callback returned `error`. The other side stays registered and unpaired.
    ConnectFailed {
        /// The participant that was not registered.
        participant: T,
        /// What the callback returned.
        error: CallbackError,
    },
    /// Called from a callback of the same registry where that is refused (always for the
    /// same token); no callback ran.
    Reentrant(T),
}

impl<T> RegisterError<T> {
    /// The trace kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegisterError::Duplicate(_) => ErrorKind::Duplicate,
            RegisterError::ConnectFailed { .. } => ErrorKind::ConnectFailed,
            RegisterError::Reentrant(_) => ErrorKind::Reentrant,
        }
    }

    /// The participant that was refused.
    pub fn into_participant(self) -> T {
        match self {
            RegisterError::Duplicate(p)
            | RegisterError::ConnectFailed { participant: p, .. }
            | RegisterError::Reentrant(p) => p,
        }
    }
}

impl<T> fmt::Debug for RegisterError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Duplicate(_) => f.write_str("Duplicate(..)"),
            RegisterError::ConnectFailed { error, .. } => f
                .debug_struct("ConnectFailed")
                .field("error", error)
                .finish_non_exhaustive(),
            RegisterError::Reentrant(_) => f.write_str("Reentrant(..)"),
        }
    }
}

impl<T> fmt::Display for RegisterError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Duplicate(_) => {
                f.write_str("duplicate: that side of the token is already registered")
            }
            RegisterError::ConnectFailed { error, .. } => write!(f, "connect-failed: {error}"),
            RegisterError::Reentrant(_) => {
                f.write_str("reentrant: called from a callback of this registry for the token")
            }
        }
    }
}

impl<T> Error for RegisterError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RegisterError::ConnectFailed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why an unregistration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnregisterError {
    /// Nothing is registered on that side of the token; no callback ran.
    NotRegistered,
    /// Called from a callback of the same registry where that is refused (always for the
    /// same token); no callback ran and the participant stays registered.
    Reentrant,
}

impl UnregisterError {
    /// The trace kind of this error.
    pub const fn kind(self) -> ErrorKind {
        match self {
            UnregisterError::NotRegistered => ErrorKind::NotRegistered,
            UnregisterError::Reentrant => ErrorKind::Reentrant,
        }
    }
}

impl fmt::Display for UnregisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnregisterError::NotRegistered => {
                f.write_str("not-registered: nothing is registered on that side of the token")
            }
            UnregisterError::Reentrant => {
                f.write_str("reentrant: called from a callback of this registry for the token")
            }
        }
    }
}

impl Error for UnregisterError {}
