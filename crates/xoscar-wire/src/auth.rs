//! Challenge–response authentication with a shared secret: the proof computation of the
//! handshake's second round (the exchange itself is driven by `xoscar-transport`).
//!
//! Each end that has a secret sends [`AUTH_NONCE_LEN`] random bytes in its first `Hello`
//! (`auth_nonce`). Once it has the peer's nonce it sends a second handshake whose `Hello`
//! carries only `auth_proof`:
//!
//! ```text
//! proof = HMAC-SHA256(secret, label || dialer_nonce || acceptor_nonce)
//! label = b"xoscar-rs auth v1 dialer\0"  or  b"xoscar-rs auth v1 acceptor"
//! ```
//!
//! The secret never crosses the wire. Both nonces make a proof good for one connection only,
//! and the role label keeps an end from replaying the peer's own proof back to it. Proofs are
//! compared in constant time (`hmac`'s `verify_slice`).
//!
//! ```
//! use xoscar_wire::{AuthRole, AuthToken};
//! let ours = AuthToken::new("s3cret").unwrap();
//! let (dialer, acceptor) = ([1u8; 32], [2u8; 32]);
//! let proof = ours.proof(AuthRole::Dialer, &dialer, &acceptor);
//! assert!(ours.verify(AuthRole::Dialer, &dialer, &acceptor, &proof));
//! // The same bytes do not pass as the other role's proof, nor under another secret.
//! assert!(!ours.verify(AuthRole::Acceptor, &dialer, &acceptor, &proof));
//! let theirs = AuthToken::new("guess").unwrap();
//! assert!(!theirs.verify(AuthRole::Dialer, &dialer, &acceptor, &proof));
//! ```

use std::fmt;
use std::sync::Arc;

use hmac::{KeyInit, Mac};

/// Length of the random nonce each authenticating end sends in its first `Hello`.
pub const AUTH_NONCE_LEN: usize = 32;

/// Length of a proof (an HMAC-SHA256 tag).
pub const AUTH_PROOF_LEN: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Which end of the connection a proof comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRole {
    /// The end that dialled.
    Dialer,
    /// The end that accepted.
    Acceptor,
}

impl AuthRole {
    fn label(self) -> &'static [u8; 26] {
        match self {
            AuthRole::Dialer => b"xoscar-rs auth v1 dialer\0\0",
            AuthRole::Acceptor => b"xoscar-rs auth v1 acceptor",
        }
    }
}

/// A shared secret. Cheap to clone; its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(Arc<[u8]>);

/// An empty secret is refused: it would authenticate anyone who also configured none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an auth token must not be empty")]
pub struct EmptyAuthToken;

impl AuthToken {
    /// A token from the secret's bytes (any length above zero; HMAC hashes long keys).
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, EmptyAuthToken> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(EmptyAuthToken);
        }
        Ok(AuthToken(secret.into()))
    }

    /// The secret's bytes, e.g. to hand it to a child process's environment. Keep them out
    /// of logs.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, role: AuthRole, dialer_nonce: &[u8], acceptor_nonce: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(role.label());
        mac.update(dialer_nonce);
        mac.update(acceptor_nonce);
        mac
    }

    /// The proof `role` sends for the connection whose nonces are given.
    pub fn proof(
        &self,
        role: AuthRole,
        dialer_nonce: &[u8],
        acceptor_nonce: &[u8],
    ) -> [u8; AUTH_PROOF_LEN] {
        self.mac(role, dialer_nonce, acceptor_nonce).finalize().into_bytes().into()
    }

    /// Whether `proof` is what an end with this secret, in `role`, sends for these nonces.
    /// Constant time in the proof's content.
    pub fn verify(
        &self,
        role: AuthRole,
        dialer_nonce: &[u8],
        acceptor_nonce: &[u8],
        proof: &[u8],
    ) -> bool {
        self.mac(role, dialer_nonce, acceptor_nonce).verify_slice(proof).is_ok()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_the_same_length() {
        assert_ne!(AuthRole::Dialer.label(), AuthRole::Acceptor.label());
    }

    #[test]
    fn a_proof_depends_on_both_nonces() {
        let token = AuthToken::new(b"k").unwrap();
        let proof = token.proof(AuthRole::Acceptor, &[1; 32], &[2; 32]);
        assert!(!token.verify(AuthRole::Acceptor, &[1; 32], &[3; 32], &proof));
        assert!(!token.verify(AuthRole::Acceptor, &[3; 32], &[2; 32], &proof));
        assert!(!token.verify(AuthRole::Acceptor, &[1; 32], &[2; 32], &proof[..31]));
        assert!(token.verify(AuthRole::Acceptor, &[1; 32], &[2; 32], &proof));
    }

    #[test]
    fn empty_secrets_are_refused_and_debug_hides_the_secret() {
        assert_eq!(AuthToken::new(""), Err(EmptyAuthToken));
        let shown = format!("{:?}", AuthToken::new("hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
