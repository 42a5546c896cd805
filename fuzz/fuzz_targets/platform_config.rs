//! Arbitrary text as `goldenpath.toml`.
#![no_main]

use gp_contract::PlatformConfig;
use gp_contract::source::SourceFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = PlatformConfig::parse(&SourceFile::new("goldenpath.toml", text.to_owned()));
});
