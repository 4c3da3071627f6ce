//! Wall time and peak RSS of a child that runs to completion (`linkguard audit`, Python).
//!
//! A finished process has no `/proc/<pid>/status` any more, so the bench runs such a command
//! through itself (`bench rss --result F -- CMD...`): this wrapper's only child is the command, so
//! `getrusage(RUSAGE_CHILDREN).ru_maxrss` is exactly the command's peak RSS (VmHWM).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};

use crate::error::{BenchError, Result};

#[derive(clap::Args, Debug)]
pub struct RssArgs {
    /// Where to write `{"exit_code", "wall_secs", "max_rss_kib"}`.
    #[arg(long, value_name = "FILE")]
    result: PathBuf,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    pub exit_code: Option<i32>,
    pub wall_secs: f64,
    pub max_rss_kib: u64,
}

/// The hidden `bench rss` subcommand.
pub fn run(args: RssArgs) -> ExitCode {
    let Some((program, rest)) = args.command.split_first() else {
        eprintln!("bench rss: no command given");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let status = Command::new(program).args(rest).status();
    let wall = start.elapsed();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench rss: cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let max_rss_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u64::try_from(u.max_rss()).unwrap_or(0))
        .unwrap_or(0);
    let measured = Measured {
        exit_code: status.code(),
        wall_secs: wall.as_secs_f64(),
        max_rss_kib,
    };
    let written = serde_json::to_vec(&measured)
        .map_err(|e| e.to_string())
        .and_then(|b| std::fs::write(&args.result, b).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!("bench rss: cannot write {}: {e}", args.result.display());
        return ExitCode::from(125);
    }
    ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    )
}

/// What a measured command printed, with its measurement.
pub struct Finished {
    pub measured: Measured,
    pub stdout: String,
    pub stderr: String,
}

/// A command to measure: program, arguments, environment (the child's environment is cleared
/// apart from `PATH` and `HOME`, so no LINKGUARD_* or proxy setting of the caller leaks in).
pub struct Job<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
}

/// Runs `job` through `bench rss` and returns its measurement and output.
pub async fn measure(bench_exe: &Path, scratch: &Path, job: Job<'_>) -> Result<Finished> {
    let result = scratch.join(format!("rss-{}.json", uuid::Uuid::new_v4()));
    let mut cmd = tokio::process::Command::new(bench_exe);
    cmd.arg("rss")
        .arg("--result")
        .arg(&result)
        .arg("--")
        .arg(job.program)
        .args(&job.args)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    for (k, v) in &job.env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| BenchError::io(bench_exe, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read(&result).map_err(|e| {
        BenchError::msg(format!(
            "{} did not run (no measurement at {}: {e}); its stderr: {}",
            job.program.display(),
            result.display(),
            tail(&stderr)
        ))
    })?;
    let _ = std::fs::remove_file(&result);
    let measured: Measured = serde_json::from_slice(&text)
        .map_err(|e| BenchError::msg(format!("{}: {e}", result.display())))?;
    Ok(Finished {
        measured,
        stdout,
        stderr,
    })
}

/// The last lines of a child's output, for error messages.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(12);
    lines.get(start..).unwrap_or_default().join("\n")
}
