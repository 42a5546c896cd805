//! Arbitrary text as `launch.toml` (what a buildpack writes): parsing never panics, and what parses serializes and
//! parses back to the same text.
#![no_main]

use gp_cnb::{LaunchToml, TomlFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(launch) = LaunchToml::from_toml_str(text) else {
        return;
    };
    if let Ok(written) = launch.to_toml_string() {
        let again = LaunchToml::from_toml_str(&written).expect("written launch.toml parses");
        // Compared as text: tool tables may hold `nan`, which is not equal to itself.
        assert_eq!(again.to_toml_string().ok(), Some(written));
    }
});
