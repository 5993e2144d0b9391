//! Deterministic "randomness".

use super::*;

/// Deterministic "randomness": every call yields different bytes.
#[derive(Debug, Default)]
pub struct SeqRandom(AtomicU64);

impl RandomSource for SeqRandom {
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        for (i, b) in buf.iter_mut().enumerate() {
            let shift = (i % 8) * 8;
            *b = ((n >> shift) & 0xff) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
}
