//! Delivery ids that say nothing: ChaCha blocks of a counter under a random key.
//!
//! Each dispatcher draws a 256-bit key from the operating system ([`getrandom`]) once; the
//! id of its `n`-th delivery is the first 128 bits of the ChaCha12 block for counter `n`
//! (ChaCha with 12 rounds, as `rand`'s `StdRng`; the block function is checked against
//! RFC 8439's 20-round vector).
//! Without the key, an id tells nothing about the dispatcher, the number of deliveries or
//! the next id; ids of one dispatcher never repeat (the counter does not), and ids of two
//! dispatchers collide with the odds of two random 128-bit numbers.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::DeliveryId;

/// Where a dispatcher's ids come from.
pub(crate) struct IdSource {
    key: [u32; 8],
    counter: AtomicU64,
}

impl IdSource {
    /// A key from the operating system's random source. Should that fail (no entropy
    /// source at all), the standard library's random hasher keys are the fallback.
    pub(crate) fn random() -> IdSource {
        let mut seed = [0u8; 32];
        if getrandom::fill(&mut seed).is_err() {
            for (i, chunk) in seed.chunks_exact_mut(8).enumerate() {
                let word = RandomState::new().hash_one(i);
                chunk.copy_from_slice(&word.to_le_bytes());
            }
        }
        let mut key = [0u32; 8];
        for (word, bytes) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        IdSource {
            key,
            counter: AtomicU64::new(0),
        }
    }

    /// A key derived from `seed`: the same ids every time (predictable: for tests only).
    pub(crate) fn seeded(seed: u64) -> IdSource {
        let mut key = [0u32; 8];
        let mut z = seed;
        for pair in key.chunks_exact_mut(2) {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            pair[0] = x as u32;
            pair[1] = (x >> 32) as u32;
        }
        IdSource {
            key,
            counter: AtomicU64::new(0),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> DeliveryId {
        self.take(1).next().unwrap_or(DeliveryId::new(0))
    }

    /// `count` new ids (the iterator goes on past them, with ids of its own): one ChaCha
    /// block gives four.
    pub(crate) fn take(&self, count: usize) -> Ids<'_> {
        let blocks = u64::try_from(count.div_ceil(IDS_PER_BLOCK)).unwrap_or(u64::MAX);
        Ids {
            key: &self.key,
            next_block: self.counter.fetch_add(blocks.max(1), Ordering::Relaxed),
            block: [0; 16],
            used: IDS_PER_BLOCK,
        }
    }
}

const IDS_PER_BLOCK: usize = 4;

/// Ids from consecutive blocks of one [`IdSource`], reserved at once.
pub(crate) struct Ids<'a> {
    key: &'a [u32; 8],
    next_block: u64,
    block: [u32; 16],
    used: usize,
}

impl Iterator for Ids<'_> {
    type Item = DeliveryId;

    fn next(&mut self) -> Option<DeliveryId> {
        if self.used == IDS_PER_BLOCK {
            let n = self.next_block;
            self.next_block = n.wrapping_add(1);
            self.block = chacha_block(self.key, [n as u32, (n >> 32) as u32, 0, 0], ID_ROUNDS);
            self.used = 0;
        }
        let words = &self.block[self.used * 4..self.used * 4 + 4];
        self.used += 1;
        let id = words
            .iter()
            .fold(0u128, |acc, &w| (acc << 32) | u128::from(w));
        Some(DeliveryId::new(id))
    }
}

fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// The rounds of the ChaCha that makes ids.
const ID_ROUNDS: usize = 12;

/// The ChaCha block function (RFC 8439, section 2.3, with 20 rounds): `tail` is words 12 to
/// 15 (counter and nonce), `rounds` is even.
fn chacha_block(key: &[u32; 8], tail: [u32; 4], rounds: usize) -> [u32; 16] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    state[4..12].copy_from_slice(key);
    state[12..].copy_from_slice(&tail);
    let mut working = state;
    for _ in 0..rounds / 2 {
        quarter_round(&mut working, 0, 4, 8, 12);
        quarter_round(&mut working, 1, 5, 9, 13);
        quarter_round(&mut working, 2, 6, 10, 14);
        quarter_round(&mut working, 3, 7, 11, 15);
        quarter_round(&mut working, 0, 5, 10, 15);
        quarter_round(&mut working, 1, 6, 11, 12);
        quarter_round(&mut working, 2, 7, 8, 13);
        quarter_round(&mut working, 3, 4, 9, 14);
    }
    for (w, s) in working.iter_mut().zip(state) {
        *w = w.wrapping_add(s);
    }
    working
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_function_matches_rfc_8439() {
        // RFC 8439, 2.3.2: key 00 01 .. 1f, counter 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00.
        let mut key = [0u32; 8];
        for (i, word) in key.iter_mut().enumerate() {
            let b = (i * 4) as u8;
            *word = u32::from_le_bytes([b, b + 1, b + 2, b + 3]);
        }
        let block = chacha_block(&key, [1, 0x0900_0000, 0x4a00_0000, 0], 20);
        assert_eq!(
            block,
            [
                0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3, 0xc7f4d1c7, 0x0368c033, 0x9aaa2204,
                0x4e6cd4c3, 0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9, 0xd19c12b5, 0xb94e16de,
                0xe883d0cb, 0x4e3c50a2,
            ]
        );
    }

    #[test]
    fn ids_differ_and_seeded_ids_repeat() {
        let a = IdSource::random();
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| a.next()).collect();
        assert_eq!(ids.len(), 1000);
        assert_ne!(IdSource::random().next(), IdSource::random().next());
        // Batches and single ids never overlap.
        let b = IdSource::random();
        let mut all: Vec<_> = b.take(10).take(10).collect();
        all.push(b.next());
        all.extend(b.take(3).take(3));
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        let (s, t) = (IdSource::seeded(7), IdSource::seeded(7));
        assert_eq!((s.next(), s.next()), (t.next(), t.next()));
        assert_ne!(IdSource::seeded(7).next(), IdSource::seeded(8).next());
    }
}
