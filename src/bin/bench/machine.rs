//! The machine the figures were taken on: CPU, cores, RAM, OS, rustc, date, load.

use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    /// Logical CPUs the bench may use.
    pub cores: usize,
    pub ram_gib: f64,
    pub os: String,
    pub kernel: String,
    pub rustc: String,
    pub python: String,
    /// UTC, RFC 3339.
    pub date: String,
    /// `/proc/loadavg` (1, 5, 15 min) when the run started and when it ended: the machine is shared.
    pub load_start: String,
    pub load_end: String,
    /// Build profile of the linkguard binary measured (`release` / `debug`).
    pub profile: String,
}

impl Machine {
    pub fn describe(linkguard: &Path, profile: &str) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let ram_gib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let kernel = format!(
            "{} {}",
            read("/proc/sys/kernel/ostype").trim(),
            read("/proc/sys/kernel/osrelease").trim()
        );
        let rustc = output("rustc", &["--version"]);
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let profile = linkguard
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .filter(|n| *n == "release" || *n == "debug")
            .unwrap_or(profile)
            .to_string();
        Self {
            cpu,
            cores,
            ram_gib,
            os,
            kernel,
            rustc,
            python: String::new(),
            date,
            load_start: loadavg(),
            load_end: String::new(),
            profile,
        }
    }
}

pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_string()
        })
        .unwrap_or_else(|| format!("{program}: not found"))
}
