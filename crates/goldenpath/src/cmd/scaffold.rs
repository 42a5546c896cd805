//! `goldenpath scaffold`: write the platform repository's assets.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gp_contract::PlatformConfig;
use gp_contract::config::CONFIG_FILE;
use gp_render::tree::{self, Planned};

use super::exit;

#[derive(Debug, Args)]
pub struct ScaffoldArgs {
    /// Root of the platform repository.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Platform config (default: `goldenpath.toml` in the output directory, else the built-in defaults).
    #[arg(long, env = "GOLDENPATH_CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn scaffold(args: ScaffoldArgs) -> ExitCode {
    if let Err(e) = tree::check_out(&args.out) {
        eprintln!("error: {e}");
        return ExitCode::from(exit::USAGE);
    }
    let path = args
        .config
        .or_else(|| Some(args.out.join(CONFIG_FILE)).filter(|p| p.is_file()));
    let config = match &path {
        Some(p) => match PlatformConfig::load(p) {
            Ok(c) => c,
            Err(diags) => {
                for d in diags {
                    let hint = d
                        .hint
                        .map(|h| format!("\n  = help: {h}"))
                        .unwrap_or_default();
                    eprintln!(
                        "error: {}:{}: {}{hint}",
                        d.file.display(),
                        d.span.start,
                        d.message
                    );
                }
                return ExitCode::from(exit::INVALID);
            }
        },
        None => PlatformConfig::default(),
    };
    let plan: Vec<Planned> = gp_render::scaffold::scaffold(&config)
        .into_iter()
        .map(|file| Planned {
            source: "goldenpath scaffold".to_owned(),
            file,
        })
        .collect();
    match tree::apply(&args.out, &plan, &BTreeSet::new()) {
        Ok(outcome) => {
            for p in &outcome.written {
                eprintln!("  wrote   {}", p.display());
            }
            for p in &outcome.pruned {
                eprintln!("  pruned  {}", p.display());
            }
            let from = path.map_or_else(
                || "built-in defaults".to_owned(),
                |p| format!("`{}`", p.display()),
            );
            eprintln!(
                "scaffolded `{}` from {from}: {} written, {} unchanged, {} pruned",
                args.out.display(),
                outcome.written.len(),
                outcome.unchanged.len(),
                outcome.pruned.len()
            );
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::USAGE)
        }
    }
}
