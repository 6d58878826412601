//! Byte searches 8 bytes at a time (SWAR: SIMD within a register), for the scans that run
//! over every output byte. Baseline x86-64 has no wider vectors to count on, and the
//! predicates are a handful of integer operations per word.

/// `0x01` in every byte.
pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte that matches. `word` maps 8 bytes (little-endian) to a word
/// with the high bit set exactly in the matching bytes (it must be exact per byte: no
/// carry may cross from one byte into the next); `byte` decides the tail of fewer than 8.
#[inline(always)]
pub(crate) fn first_match(
    bytes: &[u8],
    word: impl Fn(u64) -> u64,
    byte: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for c in &mut words {
        let hits = word(u64::from_le_bytes([
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
        ]));
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| byte(b))
        .map(|i| at + i)
}
