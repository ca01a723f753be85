//! QR codes as SVG documents, for the `otpauth://` URI an authenticator app
//! scans. The qrcode crate encodes; this only fixes the look: black on
//! white, medium error correction (enough for a screen), a quiet zone.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// `text` as an SVG QR code, or `None` if it is too long for one.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uri_becomes_an_svg_document() {
        let svg =
            super::svg("otpauth://totp/authd:alice?secret=JBSWY3DPEHPK3PXP&issuer=authd").unwrap();
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.contains("<svg"), "{svg}");
        assert!(super::svg(&"x".repeat(10_000)).is_none());
    }
}
