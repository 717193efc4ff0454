//! Numbers written in decimal without the formatting machinery: a `write!` of a number costs
//! ~250 instructions, and every SIP request and MSRP chunk we write carries a few (CSeq,
//! Content-Length, status code, byte ranges). One writer for all of them.

/// `n` in decimal, written into the end of `buf`, without the formatting machinery.
pub(crate) fn decimal(buf: &mut [u8; 20], n: u64) -> &str {
    // Only ASCII digits were written.
    std::str::from_utf8(decimal_bytes(buf, n)).unwrap_or_default()
}

/// [`decimal`] as bytes, for a writer of bytes (the SIP builders write three numbers in
/// every request, where the UTF-8 check of the `&str` cost ~70 instructions each).
pub(crate) fn decimal_bytes(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{decimal, decimal_bytes};

    #[test]
    fn decimals_are_what_display_writes() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 99, 1_000_000, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(&mut buf, n), n.to_string());
            assert_eq!(decimal_bytes(&mut buf, n), n.to_string().as_bytes());
        }
    }
}
