//! `linkguard sim` as a child process, for tests of the real binaries: started on a free port
//! with `Retry-After: 0`, its endpoint read from the ready line, killed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct SimProcess {
    child: Child,
    pub endpoint: String,
}

impl SimProcess {
    /// Serves `estate_file`; `extra` are more `linkguard sim` arguments, e.g. `["--faults", "latency=15ms"]`.
    pub fn start(estate_file: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkguard"))
            .args(["sim", "--estate", estate_file.to_str().unwrap()])
            .args(["--port", "0", "--retry-after", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("sim ready line {line:?}: {e}"));
        Self {
            child,
            endpoint: ready["endpoint"].as_str().unwrap().to_string(),
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
