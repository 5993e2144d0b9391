//! RFC 6238 TOTP codes (through `totp-rs`), the `otpauth://` provisioning
//! URI authenticator apps scan, and that URI as a QR code PNG.
//!
//! The parameters are the ones every authenticator app accepts: HMAC-SHA-1,
//! 6 digits, 30-second steps counted from the Unix epoch.

use chrono::{DateTime, Utc};
use gatehouse_application::ports::mfa::{QrError, Totp};
use qrcodegen::{QrCode, QrCodeEcc};
use totp_rs::{Algorithm, Builder, Secret};

/// Digits in a code.
const DIGITS: usize = 6;
/// Seconds in a time step (RFC 6238 X).
const STEP_SECS: i64 = 30;
/// Light modules around the QR symbol (ISO/IEC 18004 asks for 4).
const QUIET_ZONE: usize = 4;
/// Pixels per module side in the PNG.
const PX_PER_MODULE: usize = 8;

/// [`Totp`] with `totp-rs`: SHA-1, 6 digits, 30 s steps, T0 = 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct TotpRs;

impl TotpRs {
    /// The code for `step` as 6 ASCII digits (zero-padded).
    fn code_at(secret: &[u8], step: i64) -> Option<String> {
        let time = u64::try_from(step.checked_mul(STEP_SECS)?).ok()?;
        // `build_noncompliant` only skips the RFC 4226 128-bit minimum on
        // the secret; the digits and step here are valid, so `generate`
        // cannot panic.
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(secret)
            .build_noncompliant();
        Some(totp.generate(time).to_string())
    }
}

impl Totp for TotpRs {
    fn matching_step(&self, secret: &[u8], code: &str, now: DateTime<Utc>, skew: u8) -> Option<i64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now.timestamp().div_euclid(STEP_SECS);
        let skew = i64::from(skew);
        // Newest first, so a code valid for two steps reports the later one.
        let mut found = None;
        for step in (current - skew..=current + skew).rev() {
            // Every step in the window is computed and compared, whether or
            // not an earlier one matched, so the time taken says nothing
            // about which step (if any) matched.
            let matches = Self::code_at(secret, step).is_some_and(|c| constant_time_eq(c.as_bytes(), code.as_bytes()));
            if matches && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    fn provisioning_uri(&self, secret: &[u8], issuer: &str, account: &str) -> String {
        // Key URI Format: otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...
        // totp-rs's own `to_url` leaves out the default parameters and
        // refuses a `:` in names, so the URI is written here.
        let secret = Secret::from(secret).to_base32();
        let issuer = percent_encode(issuer);
        let account = percent_encode(account);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
        )
    }

    fn qr_png(&self, uri: &str) -> Result<Vec<u8>, QrError> {
        let qr = QrCode::encode_text(uri, QrCodeEcc::Medium).map_err(|e| QrError(Box::new(e)))?;
        encode_png(&qr)
    }
}

/// The QR code as an 8-bit grayscale PNG: black modules on white, with the
/// quiet zone, each module a square of [`PX_PER_MODULE`] pixels.
fn encode_png(qr: &QrCode) -> Result<Vec<u8>, QrError> {
    let modules = usize::try_from(qr.size()).map_err(|e| QrError(Box::new(e)))?;
    let side = (modules + 2 * QUIET_ZONE) * PX_PER_MODULE;
    let side_u32 = u32::try_from(side).map_err(|e| QrError(Box::new(e)))?;
    let mut pixels = vec![0xFF_u8; side * side];
    for (y, row) in pixels.chunks_exact_mut(side).enumerate() {
        let my = y / PX_PER_MODULE;
        for (x, px) in row.iter_mut().enumerate() {
            let mx = x / PX_PER_MODULE;
            let dark = match (my.checked_sub(QUIET_ZONE), mx.checked_sub(QUIET_ZONE)) {
                (Some(qy), Some(qx)) if qy < modules && qx < modules => module(qr, qx, qy),
                _ => false,
            };
            if dark {
                *px = 0;
            }
        }
    }

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| QrError(Box::new(e)))?;
    writer.write_image_data(&pixels).map_err(|e| QrError(Box::new(e)))?;
    writer.finish().map_err(|e| QrError(Box::new(e)))?;
    Ok(out)
}

fn module(qr: &QrCode, x: usize, y: usize) -> bool {
    // Coordinates are below the symbol size (at most 177), so they fit.
    match (i32::try_from(x), i32::try_from(y)) {
        (Ok(x), Ok(y)) => qr.get_module(x, y),
        _ => false,
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B uses this ASCII seed for SHA-1.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// The 6-digit code for `secs`, taken from the port itself.
    fn code(secret: &[u8], secs: i64) -> String {
        TotpRs::code_at(secret, secs.div_euclid(STEP_SECS)).unwrap()
    }

    /// RFC 6238 Appendix B, SHA-1 rows. The RFC prints 8-digit codes; a
    /// 6-digit code is the same value mod 10^6, i.e. the last six digits.
    #[test]
    fn rfc6238_sha1_test_vectors_match_through_the_port() {
        let vectors: [(i64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, eight) in vectors {
            let six = &eight[2..];
            assert_eq!(TotpRs.matching_step(RFC_SECRET, six, at(time), 0), Some(time / 30), "T = {time}");
        }
    }

    #[test]
    fn previous_step_code_matches_only_within_the_skew() {
        let secret = [7u8; 20];
        let now = 1_700_000_015;
        let previous = code(&secret, now - 30);
        assert_eq!(TotpRs.matching_step(&secret, &previous, at(now), 1), Some(now / 30 - 1));
        assert_eq!(TotpRs.matching_step(&secret, &previous, at(now), 0), None);
        let next = code(&secret, now + 30);
        assert_eq!(TotpRs.matching_step(&secret, &next, at(now), 1), Some(now / 30 + 1));
    }

    #[test]
    fn code_from_two_steps_ago_never_matches_with_skew_one() {
        let secret = [9u8; 20];
        let now = 1_700_000_015;
        let old = code(&secret, now - 60);
        // Guard against a chance collision with a code inside the window.
        assert!((-1..=1).all(|d| code(&secret, now + 30 * d) != old));
        assert_eq!(TotpRs.matching_step(&secret, &old, at(now), 1), None);
        assert_eq!(TotpRs.matching_step(&secret, &old, at(now), 2), Some(now / 30 - 2));
    }

    #[test]
    fn current_code_matches_the_current_step() {
        let secret = [1u8; 20];
        let now = 1_700_000_000;
        assert_eq!(TotpRs.matching_step(&secret, &code(&secret, now), at(now), 1), Some(now / 30));
    }

    #[test]
    fn codes_of_the_wrong_shape_never_match() {
        let now = at(59);
        for bad in ["", "28708", "2870820", "94287082", "28708a", "+87082", " 87082", "２８７０８２"] {
            assert_eq!(TotpRs.matching_step(RFC_SECRET, bad, now, 1), None, "{bad:?}");
        }
    }

    #[test]
    fn times_before_the_epoch_do_not_panic() {
        assert_eq!(TotpRs.matching_step(RFC_SECRET, "000000", at(-10), 1), None);
    }

    #[test]
    fn provisioning_uri_names_the_secret_issuer_and_account() {
        let uri = TotpRs.provisioning_uri(RFC_SECRET, "Gatehouse", "ann@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Gatehouse:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Gatehouse&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn provisioning_uri_percent_encodes_names() {
        let uri = TotpRs.provisioning_uri(&[0u8; 20], "Acme Corp: Auth", "a&b=c?d");
        assert!(uri.starts_with("otpauth://totp/Acme%20Corp%3A%20Auth:a%26b%3Dc%3Fd?secret="), "{uri}");
        assert!(uri.contains("&issuer=Acme%20Corp%3A%20Auth&"), "{uri}");
    }

    #[test]
    fn qr_png_is_a_decodable_png() {
        let uri = TotpRs.provisioning_uri(&[42u8; 20], "Gatehouse", "ann@example.com");
        let png_bytes = TotpRs.qr_png(&uri).unwrap();
        assert!(png_bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]));
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert!(info.width > 0 && info.height > 0);
        assert_eq!(info.width, info.height);
        assert_eq!(info.width % 8, 0, "whole modules of 8 px");
        assert_eq!(info.color_type, png::ColorType::Grayscale);
    }

    #[test]
    fn qr_png_has_a_white_quiet_zone_and_dark_finder_corner() {
        let png_bytes = TotpRs.qr_png("otpauth://totp/X:y?secret=AAAA").unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        let width = frame.width as usize;
        let px = |x: usize, y: usize| buf[y * width + x];
        assert_eq!(px(0, 0), 0xFF, "quiet zone is white");
        let edge = QUIET_ZONE * PX_PER_MODULE;
        assert_eq!(px(edge, edge), 0, "the finder pattern's corner is dark");
    }

    #[test]
    fn qr_png_refuses_a_uri_too_long_for_a_qr_code() {
        let uri = format!("otpauth://totp/X:{}", "y".repeat(5000));
        assert!(TotpRs.qr_png(&uri).is_err());
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"123456", b"12345"));
    }
}
