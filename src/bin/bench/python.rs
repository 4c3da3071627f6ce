//! The Python side of the comparison: a virtualenv with the official SDK (azure-mgmt-containerregistry
//! and azure-identity), found or created by the bench itself, and the import-floor measurement.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{BenchError, Result};

/// What the floor of a Python function on the official SDK imports (the issue's command).
pub const IMPORT: &str = "import azure.mgmt.containerregistry, azure.identity";

/// Finds a Python with both packages: `--python`, else `.venv-bench`, else `.venv-sdk`; creates
/// `.venv-bench` from `requirements/bench.txt` (PyPI) when none has them. Fails loudly when Python
/// itself is unavailable: the comparison is part of every run, never skipped.
pub async fn resolve(explicit: Option<&Path>, repo: &Path) -> Result<(PathBuf, String)> {
    let repo = repo.to_path_buf();
    let explicit = explicit.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || resolve_blocking(explicit.as_deref(), &repo))
        .await
        .map_err(|e| BenchError::msg(format!("preparing Python: {e}")))?
}

fn resolve_blocking(explicit: Option<&Path>, repo: &Path) -> Result<(PathBuf, String)> {
    if let Some(python) = explicit {
        return match has_sdk(python) {
            Ok(()) => Ok((python.to_path_buf(), describe(python))),
            Err(why) => Err(BenchError::msg(format!(
                "--python {}: {why}; install them with `{} -m pip install -r requirements/bench.txt`",
                python.display(),
                python.display()
            ))),
        };
    }
    let requirements = repo.join("requirements/bench.txt");
    let bench_venv = repo.join(".venv-bench");
    let bench_python = bench_venv.join("bin/python");
    if fresh(&bench_venv, &requirements) && has_sdk(&bench_python).is_ok() {
        return Ok((bench_python.clone(), describe(&bench_python)));
    }
    let sdk_python = repo.join(".venv-sdk/bin/python");
    if sdk_python.is_file() && has_sdk(&sdk_python).is_ok() {
        return Ok((sdk_python.clone(), describe(&sdk_python)));
    }
    create(&bench_venv, &requirements)?;
    has_sdk(&bench_python).map_err(|why| {
        BenchError::msg(format!(
            "{} was just created from {} but {why}",
            bench_venv.display(),
            requirements.display()
        ))
    })?;
    Ok((bench_python.clone(), describe(&bench_python)))
}

/// `.installed` newer than the requirements file (the convention of scripts/test.sh).
fn fresh(venv: &Path, requirements: &Path) -> bool {
    let stamp = std::fs::metadata(venv.join(".installed")).and_then(|m| m.modified());
    let req = std::fs::metadata(requirements).and_then(|m| m.modified());
    matches!((stamp, req), (Ok(s), Ok(r)) if s >= r)
}

fn has_sdk(python: &Path) -> std::result::Result<(), String> {
    if !python.is_file() {
        return Err("no such Python".into());
    }
    let out = Command::new(python)
        .args(["-c", IMPORT])
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "it cannot `{IMPORT}`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn create(venv: &Path, requirements: &Path) -> Result<()> {
    let base = std::env::var_os("PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    eprintln!(
        "bench: creating {} from {} (PyPI)",
        venv.display(),
        requirements.display()
    );
    let status = Command::new(&base)
        .arg("-m")
        .arg("venv")
        .arg(venv)
        .status()
        .map_err(|e| {
            BenchError::msg(format!(
                "Python is needed for the SDK comparison and `{} -m venv` cannot run: {e}; install python3 with venv (Debian: apt-get install python3-venv) or pass --python",
                base.display()
            ))
        })?;
    if !status.success() {
        return Err(BenchError::msg(format!(
            "`{} -m venv {}` failed ({status}); install python3-venv or pass --python",
            base.display(),
            venv.display()
        )));
    }
    let pip = venv.join("bin/pip");
    let status = Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements)
        .status()
        .map_err(|e| BenchError::msg(format!("{}: {e}", pip.display())))?;
    if !status.success() {
        return Err(BenchError::msg(format!(
            "`{} install -r {}` failed ({status}); PyPI must be reachable",
            pip.display(),
            requirements.display()
        )));
    }
    let stamp = venv.join(".installed");
    std::fs::write(&stamp, b"").map_err(|e| BenchError::io(&stamp, e))
}

/// `Python 3.11.7, azure-mgmt-containerregistry 15.0.0, azure-identity 1.27.0, azure-core 1.41.0`.
fn describe(python: &Path) -> String {
    let code = "import sys, importlib.metadata as m\n\
                print('Python ' + sys.version.split()[0] + ', ' + ', '.join(p + ' ' + m.version(p) for p in ('azure-mgmt-containerregistry', 'azure-identity', 'azure-core')))";
    crate::machine::output(&python.display().to_string(), &["-c", code])
}
