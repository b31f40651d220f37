//! [`Tokens`]: which `Api-Token` belongs to which account, kept as SHA-256 digests.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::AccountId;

/// The API tokens and the account each one picks, kept as SHA-256 digests (never the token
/// itself: give the token to [`token`](Tokens::token), which hashes it at once, or only its
/// digest to [`token_sha256`](Tokens::token_sha256), e.g. read from a configuration file
/// that never held the token).
///
/// [`account`](Tokens::account) hashes the token presented and compares its digest with
/// every digest held, each in constant time and without stopping at a match, so the time
/// it takes says nothing about which token, or how much of one, was right. An empty token
/// is never accepted. A token given for two accounts picks the first.
///
/// `Debug` shows the accounts, never a digest.
///
/// ```
/// use posthook::AccountId;
/// use posthook::api::Tokens;
///
/// let tokens = Tokens::new()
///     .token(AccountId::new(1), "acme-secret-token")
///     .token_sha256(AccountId::new(2), Tokens::sha256("globex-secret-token"));
/// assert_eq!(tokens.account(b"acme-secret-token"), Some(AccountId::new(1)));
/// assert_eq!(tokens.account(b"globex-secret-token"), Some(AccountId::new(2)));
/// assert_eq!(tokens.account(b"acme-secret-tokeN"), None);
/// assert_eq!(tokens.account(b""), None);
/// ```
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(AccountId, [u8; 32])>,
}

impl Tokens {
    /// No token: every request is refused.
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Adds `token` (hashed here; the token itself is not kept) for `account`.
    #[must_use]
    pub fn token(self, account: AccountId, token: impl AsRef<[u8]>) -> Tokens {
        self.token_sha256(account, Tokens::sha256(token))
    }

    /// Adds a token known only by its SHA-256 digest ([`Tokens::sha256`]) for `account`.
    #[must_use]
    pub fn token_sha256(mut self, account: AccountId, digest: [u8; 32]) -> Tokens {
        self.entries.push((account, digest));
        self
    }

    /// The SHA-256 digest of `token`: what to keep at rest instead of the token.
    pub fn sha256(token: impl AsRef<[u8]>) -> [u8; 32] {
        Sha256::digest(token.as_ref()).into()
    }

    /// The account whose token `token` is, if any (see the type's docs for how it compares).
    pub fn account(&self, token: &[u8]) -> Option<AccountId> {
        if token.is_empty() {
            return None;
        }
        let digest = Tokens::sha256(token);
        let mut found = None;
        for (account, held) in &self.entries {
            let equal = constant_time_eq(held, &digest);
            if equal && found.is_none() {
                found = Some(*account);
            }
        }
        found
    }

    /// How many tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "accounts",
                &self
                    .entries
                    .iter()
                    .map(|(a, _)| a.get())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether `a` and `b` are equal, looking at every byte whatever the first difference.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_digests_only() {
        let a = Tokens::sha256("a");
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!constant_time_eq(&a, &b));
    }

    #[test]
    fn debug_shows_accounts_not_digests() {
        let tokens = Tokens::new().token(AccountId::new(7), "secret");
        let shown = format!("{tokens:?}");
        assert_eq!(shown, "Tokens { accounts: [7] }");
    }

    #[test]
    fn first_account_wins() {
        let tokens = Tokens::new()
            .token(AccountId::new(1), "same")
            .token(AccountId::new(2), "same");
        assert_eq!(tokens.account(b"same"), Some(AccountId::new(1)));
    }
}
