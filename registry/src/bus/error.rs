//! Typed outcomes of the bus's calls. Each error names its [`ErrorKind`], the word a trace
//! prints for it.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

/// The kinds of error of the bus contract, with the names traces print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// `invalid-key`: a device key is zero.
    InvalidKey,
    /// `invalid-id`: a device's type is 0 or ANY, or a driver's id table is empty.
    InvalidId,
    /// `invalid-name`: a driver name is not 1 to 32 of `a-z 0-9 _ -`.
    InvalidName,
    /// `duplicate`: the key or the name is already registered.
    Duplicate,
    /// `not-registered`: no device under the key, or no driver under the name.
    NotRegistered,
    /// `reentrant`: called from a probe or remove where that would deadlock or break
    /// per-device exclusion.
    Reentrant,
}

impl ErrorKind {
    /// Every kind, in the order of the contract.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::InvalidKey,
        ErrorKind::InvalidId,
        ErrorKind::InvalidName,
        ErrorKind::Duplicate,
        ErrorKind::NotRegistered,
        ErrorKind::Reentrant,
    ];

    /// The trace name: `invalid-key`, `invalid-id`, `invalid-name`, `duplicate`,
    /// `not-registered`, `reentrant`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid-key",
            ErrorKind::InvalidId => "invalid-id",
            ErrorKind::InvalidName => "invalid-name",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::NotRegistered => "not-registered",
            ErrorKind::Reentrant => "reentrant",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ErrorKind, String> {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown error kind `{s}`"))
    }
}

/// Declares a validation error: a unit struct with its kind and message.
macro_rules! validation_error {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $message:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name;

        impl $name {
            #[doc = concat!("Always [`ErrorKind::", stringify!($kind), "`].")]
            pub const fn kind(self) -> ErrorKind {
                ErrorKind::$kind
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($message)
            }
        }

        impl Error for $name {}
    };
}

validation_error!(
    /// A zero device key was given; keys are never zero.
    InvalidKey,
    InvalidKey,
    "invalid-key: a device key is never zero"
);
validation_error!(
    /// A device type of 0 or ANY, or an empty id table.
    InvalidId,
    InvalidId,
    "invalid-id: a device type is never 0 or ANY, and an id table is never empty"
);
validation_error!(
    /// A driver name that is not 1 to 32 of `a-z 0-9 _ -`.
    InvalidName,
    InvalidName,
    "invalid-name: a driver name is 1 to 32 of a-z 0-9 _ -"
);
validation_error!(
    /// Called from a probe or remove where the backend refuses it; nothing changed and no
    /// callback ran.
    Reentrant,
    Reentrant,
    "reentrant: called from a probe or remove of this bus where that is refused"
);

/// Why a registration was refused. It hands back the device or driver, which the bus did not
/// keep; no callback ran.
///
/// ```
/// use std::sync::Arc;
/// use bypass_registry::bus::{ErrorKind, RegisterError};
/// let e = RegisterError::Duplicate(Arc::new(5));
/// assert_eq!(e.kind(), ErrorKind::Duplicate);
/// assert_eq!(*e.into_inner(), 5);
/// ```
pub enum RegisterError<T> {
    /// The key (of a device) or the name (of a driver) is already registered; the registered
    /// one is untouched.
    Duplicate(T),
    /// Called from a probe or remove where that is refused (always about the same device).
    Reentrant(T),
}

impl<T> RegisterError<T> {
    /// The trace kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegisterError::Duplicate(_) => ErrorKind::Duplicate,
            RegisterError::Reentrant(_) => ErrorKind::Reentrant,
        }
    }

    /// The device or driver that was refused.
    pub fn into_inner(self) -> T {
        match self {
            RegisterError::Duplicate(t) | RegisterError::Reentrant(t) => t,
        }
    }
}

impl<T> fmt::Debug for RegisterError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Duplicate(_) => f.write_str("Duplicate(..)"),
            RegisterError::Reentrant(_) => f.write_str("Reentrant(..)"),
        }
    }
}

impl<T> fmt::Display for RegisterError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Duplicate(_) => {
                f.write_str("duplicate: the key or name is already registered")
            }
            RegisterError::Reentrant(_) => fmt::Display::fmt(&Reentrant, f),
        }
    }
}

impl<T> Error for RegisterError<T> {}

/// Why an unregistration was refused; no callback ran and nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnregisterError {
    /// No device under the key, or no driver under the name.
    NotRegistered,
    /// Called from a probe or remove where that is refused: always about the device being
    /// called back, or the driver being called.
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
                f.write_str("not-registered: no device under the key, or no driver under the name")
            }
            UnregisterError::Reentrant => fmt::Display::fmt(&Reentrant, f),
        }
    }
}

impl Error for UnregisterError {}
