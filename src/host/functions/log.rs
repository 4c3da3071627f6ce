//! The lines an invocation returns in `Logs` (shown by the host as the invocation's log), mirrored
//! to stdout through `tracing` inside the invocation's span (which carries the invocation id), so
//! they survive a failed invocation, whose `Logs` the host drops. Never given secrets or tokens.

#[derive(Debug, Default)]
pub struct InvocationLog {
    lines: Vec<String>,
}

impl InvocationLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn info(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!("{line}");
        self.lines.push(line);
    }

    /// Also printed with `warn` in it, which the host logs as a warning.
    pub fn warn(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::warn!("{line}");
        self.lines.push(format!("warning: {line}"));
    }

    pub fn error(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::error!("{line}");
        self.lines.push(format!("error: {line}"));
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }
}
