//! `linkguard report`: read a stored `linkguard.report/v1` JSON document and show it.
//!
//! - `render FILE [--format text|md|html|json] [--output PATH]`: the full rendering (exit 0, 2 on
//!   bad input);
//! - `summary FILE`: a few lines; exit 0 when nothing needs attention, 1 when something does
//!   (findings, failed actions, errors, an incomplete run), 2 on bad input.
//!
//! `FILE` may be `-` for stdin.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::model::{Outcome, REPORT_SCHEMA, Report};
use super::render::{self, Format};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Render a report as text, Markdown or a self-contained HTML page.
    Render {
        /// The report JSON (`runs/YYYY/MM/DD/<run id>.json` or `latest.json`); `-` reads stdin.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print a short summary. Exit 0: nothing needs attention; 1: something does; 2: bad input.
    Summary {
        /// The report JSON; `-` reads stdin.
        file: PathBuf,
    },
}

/// Why a report file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: not a valid report at `{path}`: {message}")]
    Json {
        file: String,
        path: String,
        message: String,
    },
    #[error(
        "{file}: `schema` is {found:?}, expected {REPORT_SCHEMA:?}: this is not a linkguard report of this version"
    )]
    Schema { file: String, found: String },
}

fn display_name(file: &Path) -> String {
    if file == Path::new("-") {
        "<stdin>".into()
    } else {
        file.display().to_string()
    }
}

/// Parses a report document, naming the field that is wrong.
pub fn parse_report(file: &str, bytes: &[u8]) -> Result<Report, ReadError> {
    // Check the schema tag first: a different document should say so, not fail on some field.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(REPORT_SCHEMA) => {}
            Some(other) => {
                return Err(ReadError::Schema {
                    file: file.into(),
                    found: other.into(),
                });
            }
            None => {
                return Err(ReadError::Json {
                    file: file.into(),
                    path: "schema".into(),
                    message: format!("missing: a report starts with \"schema\": {REPORT_SCHEMA:?}"),
                });
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| ReadError::Json {
        file: file.into(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Reads and parses a report file (`-` for stdin).
pub fn read_report(file: &Path) -> Result<Report, ReadError> {
    let name = display_name(file);
    let bytes = if file == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin()
            .read_to_end(&mut buf)
            .map_err(|source| ReadError::Io {
                file: name.clone(),
                source,
            })?;
        buf
    } else {
        std::fs::read(file).map_err(|source| ReadError::Io {
            file: name.clone(),
            source,
        })?
    };
    parse_report(&name, &bytes)
}

/// True when the report asks for a person: findings, failed actions, errors or an incomplete run.
pub fn needs_attention(report: &Report) -> bool {
    !report.complete
        || !report.needs_attention.is_empty()
        || !report.errors.is_empty()
        || report.actions.iter().any(|a| a.outcome == Outcome::Failed)
}

pub fn run_cli(args: ReportArgs) -> ExitCode {
    match args.command {
        ReportCommand::Render {
            file,
            format,
            output,
        } => {
            let report = match read_report(&file) {
                Ok(r) => r,
                Err(e) => return fail(&e.to_string()),
            };
            let rendered = render::render(&report, format);
            let written = match &output {
                Some(path) => std::fs::write(path, rendered.as_bytes())
                    .map_err(|e| format!("{}: cannot write: {e}", path.display())),
                None => io::stdout()
                    .write_all(rendered.as_bytes())
                    .map_err(|e| format!("cannot write to stdout: {e}")),
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        ReportCommand::Summary { file } => {
            let report = match read_report(&file) {
                Ok(r) => r,
                Err(e) => return fail(&e.to_string()),
            };
            if let Err(e) = io::stdout().write_all(render::text::summary(&report).as_bytes()) {
                return fail(&format!("cannot write to stdout: {e}"));
            }
            if needs_attention(&report) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(io::stderr(), "linkguard report: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_field() {
        let e = parse_report(
            "r.json",
            br#"{"schema":"linkguard.report/v1","run":{"id":1}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("r.json: not a valid report at `run.id`"),
            "{e}"
        );
        let e = parse_report("r.json", br#"{"schema":"linkguard.plan/v1"}"#).unwrap_err();
        assert!(e.to_string().contains("\"linkguard.plan/v1\""), "{e}");
        let e = parse_report("r.json", b"{}").unwrap_err();
        assert!(e.to_string().contains("at `schema`"), "{e}");
        let e = parse_report("r.json", b"not json").unwrap_err();
        assert!(
            e.to_string().starts_with("r.json: not a valid report"),
            "{e}"
        );
    }
}
