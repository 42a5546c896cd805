//! Arbitrary text through the whole contract check (YAML reader, decoder, rules, every output format).
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use gp_contract::check::{Report, check_source};
use gp_contract::output;
use gp_contract::source::SourceFile;
use gp_contract::PlatformConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = PlatformConfig::default();
    // Inside the contracts tree, so the location rules run too.
    let path = PathBuf::from("docs/20-contracts/app-deployments/dev/APP-0001.yaml");
    let source = Arc::new(SourceFile::new(path.clone(), text.to_owned()));
    let result = check_source(source.clone(), &config);
    let mut report = Report::default();
    report.sources.insert(path, source);
    report.files.push(result);
    let _ = output::render_human(&report, false);
    let _ = output::render_json(&report);
    let _ = output::render_github(&report);
    let _ = output::render_sarif(&report);
});
