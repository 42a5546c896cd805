//! Arbitrary text as `project.toml` (schema 0.1 upgraded, then 0.2): parsing never panics, and what parses
//! serializes and parses back to the same text.
#![no_main]

use gp_cnb::{ProjectDescriptor, TomlFile, upgrade_schema_01};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(project) = ProjectDescriptor::from_toml_str(&upgrade_schema_01(text)) else {
        return;
    };
    if let Ok(written) = project.to_toml_string() {
        let again = ProjectDescriptor::from_toml_str(&written).expect("written project.toml parses");
        // Compared as text: tool tables may hold `nan`, which is not equal to itself.
        assert_eq!(again.to_toml_string().ok(), Some(written));
    }
});
