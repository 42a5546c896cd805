//! Exports a directory as a reproducible gzip layer: `layer_export DIR OUT_FILE`. Used by `bench/layer-export.sh`.

use std::io::BufWriter;
use std::process::ExitCode;

use gp_oci::layer::{LayerOptions, entries_from_dir, write_layer};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = args.as_slice() else {
        eprintln!("usage: layer_export DIR OUT_FILE");
        return ExitCode::from(2);
    };
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let entries = entries_from_dir(std::path::Path::new(dir), "")?;
        let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
        let (info, _) = write_layer(&entries, &LayerOptions::default(), file)?;
        println!("{} {} {}", info.digest, info.diff_id, info.size);
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
