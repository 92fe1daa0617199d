//! Number formatting for lines and headers written on every request, where
//! `format!` and its machinery cost more than the rest of the work.

/// `n` in decimal, written into `digits`.
pub fn decimal(n: u64, digits: &mut [u8; 20]) -> &str {
    let mut n = n;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&digits[start..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_display() {
        for n in [0, 7, 10, 59, 1_000_000, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }
}
