// The embedded font: DejaVu Sans registered with plotters once per process, so text renders on a
// machine with no fonts or fontconfig. It must never reach for a system font.

use plotters::style::{FontStyle, register_font};
use std::sync::OnceLock;

/// The only family this crate draws with. plotters' own defaults also use it.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers DejaVu Sans (regular and bold) as "sans-serif" the first time it is called.
///
/// This replaces any "sans-serif" registered earlier in the process.
pub(crate) fn ensure_registered() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let faces = [
                (FontStyle::Normal, dejavu::sans::regular()),
                (FontStyle::Bold, dejavu::sans::bold()),
            ];
            for (style, bytes) in faces {
                register_font(FAMILY, style, bytes).map_err(|_| {
                    format!(
                        "the embedded DejaVu Sans ({}) could not be loaded",
                        style.as_str()
                    )
                })?;
            }
            Ok(())
        })
        .clone()
}
