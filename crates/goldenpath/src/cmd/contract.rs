//! `goldenpath contract ...`: validate contracts, print the schema.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use gp_contract::check::DEFAULT_TREE;
use gp_contract::output;
use gp_contract::{ConfigSource, check_files, collect_files};

use super::exit;

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Check contracts: shape, rules, platform policy, file layout, uniqueness per environment.
    Validate(ValidateArgs),
    /// Validate, then write the GitOps tree: kpack Image or build workflow, Argo CD Application (+ `ImageUpdater`),
    /// Deployment, Service, Ingress, bindings, kustomization. Prunes only files it generated earlier.
    Render(RenderArgs),
    /// Print the contract's JSON Schema (for editors and other validators).
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Contract files or directories. Default: the contracts tree `docs/20-contracts/app-deployments`.
    pub paths: Vec<PathBuf>,
    /// Root of the GitOps tree to write.
    #[arg(long, default_value = "gitops")]
    pub out: PathBuf,
    /// Platform config to use for every file (default: the nearest `goldenpath.toml` above each file).
    #[arg(long, env = "GOLDENPATH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Colour in human output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// List every written and pruned file, however many.
    #[arg(long, short)]
    pub verbose: bool,
    /// Pin an application's image to a digest (`APPLICATION=sha256:...`), as a build just produced it; without
    /// it, a digest already pinned in the tree (by an image updater) is kept.
    #[arg(long = "pin", value_name = "APPLICATION=DIGEST")]
    pub pins: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Contract files or directories (searched for *.yaml / *.yml). Default: the contracts tree
    /// `docs/20-contracts/app-deployments`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    pub format: FormatArg,
    /// Platform config to use for every file (default: the nearest `goldenpath.toml` above each file).
    #[arg(long, env = "GOLDENPATH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Colour in human output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Human,
    Json,
    Github,
    Sarif,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
    pub format: SchemaFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaFormat {
    Json,
    Yaml,
}

pub fn run(cmd: ContractCommand) -> ExitCode {
    match cmd {
        ContractCommand::Validate(args) => validate(args),
        ContractCommand::Render(args) => super::render::render(args),
        ContractCommand::Schema(args) => {
            let text = match args.format {
                SchemaFormat::Json => gp_contract::schema::app_deployment_schema_json(),
                SchemaFormat::Yaml => gp_contract::schema::app_deployment_schema_yaml(),
            };
            super::write_stdout(&text)
        }
    }
}

/// Resolves PATHs and `--config`, then checks every file. `Err` carries the exit code after a usage error.
pub fn check_inputs(
    paths: Vec<PathBuf>,
    config: Option<PathBuf>,
) -> Result<gp_contract::Report, ExitCode> {
    let usage = || ExitCode::from(exit::USAGE);
    let paths = if paths.is_empty() {
        let tree = PathBuf::from(DEFAULT_TREE);
        if !tree.is_dir() {
            eprintln!(
                "error: no PATH given and the contracts tree `{DEFAULT_TREE}` does not exist here\n  = help: run from the contracts repository root, or pass the contract files or directories to check"
            );
            return Err(usage());
        }
        vec![tree]
    } else {
        paths
    };
    let files = collect_files(&paths).map_err(|e| {
        eprintln!("error: {e}");
        usage()
    })?;
    if files.is_empty() {
        eprintln!(
            "error: no *.yaml or *.yml files under {}",
            display_list(&paths)
        );
        return Err(usage());
    }
    let configs = match config {
        Some(p) if p.symlink_metadata().is_err() => {
            eprintln!(
                "error: config file `{}` does not exist\n  = help: pass the platform config file, e.g. `--config goldenpath.toml`",
                p.display()
            );
            return Err(usage());
        }
        Some(p) if p.is_dir() && !p.is_symlink() => {
            eprintln!(
                "error: `--config {}` is a directory; it takes the platform config file\n  = help: pass the file, e.g. `--config {}`",
                p.display(),
                p.join(gp_contract::config::CONFIG_FILE).display()
            );
            return Err(usage());
        }
        // Anything else that is not a regular file (a link, a FIFO) is refused by name when read.
        Some(p) => ConfigSource::File(p),
        None => ConfigSource::Discover,
    };
    Ok(check_files(&files, &configs))
}

/// Human colour decision: `--color`, the terminal, and `NO_COLOR`.
pub fn use_color(arg: ColorArg) -> bool {
    match arg {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Exit code for a report: 2 when a file could not be read, 1 when anything is invalid.
pub fn report_exit(report: &gp_contract::Report) -> ExitCode {
    if report
        .diagnostics()
        .any(|d| d.code == gp_contract::Code::Io)
    {
        ExitCode::from(exit::USAGE)
    } else if report.error_count() > 0 {
        ExitCode::from(exit::INVALID)
    } else {
        ExitCode::from(exit::OK)
    }
}

fn validate(args: ValidateArgs) -> ExitCode {
    let report = match check_inputs(args.paths, args.config) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let written = match args.format {
        FormatArg::Human => {
            let text = output::render_human(&report, use_color(args.color));
            std::io::stderr().lock().write_all(text.as_bytes())
        }
        FormatArg::Json => write_out(&output::render_json(&report)),
        FormatArg::Github => write_out(&output::render_github(&report)),
        FormatArg::Sarif => write_out(&output::render_sarif(&report)),
    };
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(exit::USAGE);
    }
    report_exit(&report)
}

fn write_out(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn display_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}
