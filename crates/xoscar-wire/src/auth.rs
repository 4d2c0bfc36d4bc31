//! Challenge–response authentication with a shared secret: the proof computation of the
//! handshake's second round (the exchange itself is driven by `xoscar-transport`).
//!
//! Each end that has a secret sends [`AUTH_NONCE_LEN`] random bytes in its first `Hello`
//! (`auth_nonce`). Then the dialer sends a second handshake whose `Hello` carries only
//! `auth_proof`; the acceptor checks it and only then sends its own:
//!
//! ```text
//! proof = HMAC-SHA256(secret, label || dialer_nonce || acceptor_nonce)
//! label = b"xoscar-rs auth v1 dialer\0\0"  or  b"xoscar-rs auth v1 acceptor"  (26 bytes)
//! ```
//!
//! The secret never crosses the wire. Both nonces make a proof good for one connection only,
//! and the role label keeps an end from replaying the peer's own proof back to it. Proofs are
//! compared in constant time (`hmac`'s `verify_slice`). A listener gives no proof to a peer
//! that has not proved itself, so a stranger cannot collect proofs to guess the secret from
//! offline; a dialer does give one to whatever it dials, so secrets must be hard to guess: at
//! least [`MIN_AUTH_TOKEN_LEN`] bytes.
//!
//! ```
//! use xoscar_wire::{AuthRole, AuthToken};
//! let ours = AuthToken::new("a long shared s3cret").unwrap();
//! let (dialer, acceptor) = ([1u8; 32], [2u8; 32]);
//! let proof = ours.proof(AuthRole::Dialer, &dialer, &acceptor);
//! assert!(ours.verify(AuthRole::Dialer, &dialer, &acceptor, &proof));
//! // The same bytes do not pass as the other role's proof, nor under another secret.
//! assert!(!ours.verify(AuthRole::Acceptor, &dialer, &acceptor, &proof));
//! let theirs = AuthToken::new("a long shared guess").unwrap();
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

/// The shortest secret accepted: 16 bytes (e.g. 32 hex digits from `openssl rand -hex 16`).
/// A proof an end sends lets whoever received it test guesses offline, so a secret must be
/// too long to guess.
pub const MIN_AUTH_TOKEN_LEN: usize = 16;

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadAuthToken {
    /// Shorter than [`MIN_AUTH_TOKEN_LEN`] bytes: guessable from one proof, offline.
    #[error("an auth token must be at least {MIN_AUTH_TOKEN_LEN} bytes (it has {0})")]
    TooShort(usize),
    /// It holds a NUL byte, which no environment variable can carry (sub pools get the
    /// secret through theirs).
    #[error("an auth token must not contain a NUL byte")]
    Nul,
}

impl AuthToken {
    /// A token from the secret's bytes: at least [`MIN_AUTH_TOKEN_LEN`], no NUL byte (HMAC
    /// hashes long keys).
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, BadAuthToken> {
        let secret = secret.as_ref();
        if secret.len() < MIN_AUTH_TOKEN_LEN {
            return Err(BadAuthToken::TooShort(secret.len()));
        }
        if secret.contains(&0) {
            return Err(BadAuthToken::Nul);
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
        let token = AuthToken::new(b"0123456789abcdef").unwrap();
        let proof = token.proof(AuthRole::Acceptor, &[1; 32], &[2; 32]);
        assert!(!token.verify(AuthRole::Acceptor, &[1; 32], &[3; 32], &proof));
        assert!(!token.verify(AuthRole::Acceptor, &[3; 32], &[2; 32], &proof));
        assert!(!token.verify(AuthRole::Acceptor, &[1; 32], &[2; 32], &proof[..31]));
        assert!(token.verify(AuthRole::Acceptor, &[1; 32], &[2; 32], &proof));
    }

    #[test]
    fn short_or_nul_secrets_are_refused_and_debug_hides_the_secret() {
        assert_eq!(AuthToken::new(""), Err(BadAuthToken::TooShort(0)));
        assert_eq!(AuthToken::new("hunter2"), Err(BadAuthToken::TooShort(7)));
        assert_eq!(AuthToken::new(b"0123456789abcdef\0"), Err(BadAuthToken::Nul));
        let shown = format!("{:?}", AuthToken::new("hunter2-hunter2-hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
