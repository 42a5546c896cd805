//! Exports a directory as a reproducible gzip layer: `layer_export DIR OUT_FILE [LEVEL]` (gzip level, default 6).
//! Used by `bench/layer-export.sh`.

use std::io::BufWriter;
use std::process::ExitCode;

use gp_oci::layer::{Compression, LayerOptions, entries_from_dir, write_layer};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, out, level) = match args.as_slice() {
        [dir, out] => (dir, out, 6),
        [dir, out, level] if level.parse::<u32>().is_ok_and(|l| l <= 9) => {
            (dir, out, level.parse().unwrap_or(6))
        }
        _ => {
            eprintln!("usage: layer_export DIR OUT_FILE [LEVEL 0-9]");
            return ExitCode::from(2);
        }
    };
    let opts = LayerOptions {
        compression: Compression::Gzip { level },
        ..LayerOptions::default()
    };
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let entries = entries_from_dir(std::path::Path::new(dir), "")?;
        let file = BufWriter::with_capacity(1 << 20, fs_err::File::create(out)?);
        let (info, _) = write_layer(&entries, &opts, file)?;
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
