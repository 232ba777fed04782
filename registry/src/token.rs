//! The token that pairs a producer with a consumer.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use crate::error::InvalidToken;

/// The opaque value a producer and a consumer agree on (in Linux, the eventfd).
///
/// A token is never zero: [`Token::new`] refuses `0` with [`InvalidToken`], the
/// `invalid-token` error of the contract. A VMM can number its tokens itself or key a
/// pair by the address of the shared object that owns the eventfd ([`Token::from_arc`]).
///
/// ```
/// use std::sync::Arc;
/// use bypass_registry::{ErrorKind, Token};
///
/// let t = Token::new(7).unwrap();
/// assert_eq!(t.get(), 7);
/// assert_eq!(Token::new(0).unwrap_err().kind(), ErrorKind::InvalidToken);
///
/// let eventfd = Arc::new(42u32);
/// assert_eq!(Token::from_arc(&eventfd), Token::from_arc(&eventfd.clone()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(NonZeroU64);

impl Token {
    /// A token from a numeric id; `0` is refused.
    pub const fn new(id: u64) -> Result<Token, InvalidToken> {
        match NonZeroU64::new(id) {
            Some(id) => Ok(Token(id)),
            None => Err(InvalidToken),
        }
    }

    /// The token of a shared object: its address, which is never null.
    ///
    /// Two clones of one `Arc` give the same token. The token stays unique only while the
    /// object is alive, as in Linux, where the eventfd context is the token: unregister
    /// before the object is dropped.
    pub fn from_arc<T: ?Sized>(object: &Arc<T>) -> Token {
        let addr = Arc::as_ptr(object).cast::<()>() as usize as u64;
        // Invariant: an `Arc` points at a live allocation, whose address is never 0.
        Token(NonZeroU64::new(addr).expect("an Arc's address is never null"))
    }

    /// The numeric value, never zero.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.0)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<u64> for Token {
    type Error = InvalidToken;
    fn try_from(id: u64) -> Result<Token, InvalidToken> {
        Token::new(id)
    }
}

impl From<Token> for u64 {
    fn from(token: Token) -> u64 {
        token.get()
    }
}
