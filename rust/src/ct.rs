//! Branch-free helpers for code whose control flow must not depend on secrets.
//!
//! A mask is `usize::MAX` for true and `0` for false. `black_box` keeps the optimiser from
//! turning the arithmetic back into branches.

use std::hint::black_box;

/// All ones if the top bit of `x` is set.
#[inline]
fn msb_mask(x: usize) -> usize {
    black_box(0usize.wrapping_sub(x >> (usize::BITS - 1)))
}

/// All ones if `a < b`.
#[inline]
pub fn lt(a: usize, b: usize) -> usize {
    // The borrow of a - b, computed without comparisons (Hacker's Delight 2-12).
    msb_mask(a ^ ((a ^ b) | (a.wrapping_sub(b) ^ a)))
}

/// All ones if `a >= b`.
#[inline]
pub fn ge(a: usize, b: usize) -> usize {
    !lt(a, b)
}

/// All ones if `x == 0`.
#[inline]
pub fn is_zero(x: usize) -> usize {
    msb_mask(!x & x.wrapping_sub(1))
}

/// All ones if `a == b`.
#[inline]
pub fn eq(a: usize, b: usize) -> usize {
    is_zero(a ^ b)
}

/// `a` where `mask` is all ones, `b` where it is zero.
#[inline]
pub fn select(mask: usize, a: usize, b: usize) -> usize {
    (mask & a) | (!mask & b)
}

/// Byte-wise `select`.
#[inline]
pub fn select_u8(mask: usize, a: u8, b: u8) -> u8 {
    let m = mask as u8;
    (m & a) | (!m & b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_match_plain_ones() {
        let values = [0usize, 1, 2, 15, 16, 255, 256, 1 << 31, usize::MAX - 1, usize::MAX];
        for &a in &values {
            for &b in &values {
                assert_eq!(lt(a, b) == usize::MAX, a < b, "{a} < {b}");
                assert_eq!(ge(a, b) == usize::MAX, a >= b);
                assert_eq!(eq(a, b) == usize::MAX, a == b);
                assert!(lt(a, b) == 0 || lt(a, b) == usize::MAX);
            }
            assert_eq!(is_zero(a) == usize::MAX, a == 0);
        }
        assert_eq!(select(usize::MAX, 3, 4), 3);
        assert_eq!(select(0, 3, 4), 4);
        assert_eq!(select_u8(usize::MAX, 3, 4), 3);
        assert_eq!(select_u8(0, 3, 4), 4);
    }
}
