//! Arbitrary text as a `Procfile`: parsing never panics, errors stay short, and what parses prints and parses back
//! to the same processes.
#![no_main]

use gp_cnb::Procfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Procfile::parse(text) {
        Ok(procfile) => {
            let _ = procfile.to_processes(&["bash", "-c"]);
            let again = Procfile::parse(&procfile.to_string()).expect("a printed Procfile parses");
            let kinds = |p: &Procfile| {
                p.entries
                    .iter()
                    .map(|e| (e.kind.clone(), e.command.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(kinds(&again), kinds(&procfile));
        }
        Err(e) => assert!(e.to_string().len() < 1024, "error echoes too much"),
    }
});
