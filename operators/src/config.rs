//! Config validation shared by every stage: collect every problem, report them all at once.

/// Every problem found in a stage's configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

/// Accumulates configuration problems.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Records `message` (prefixed with `key`) when `ok` is false.
    pub fn check(&mut self, ok: bool, key: &str, message: impl std::fmt::Display) {
        if !ok {
            self.0.push(format!("{key}: {message}"));
        }
    }
    /// Records a problem unconditionally.
    pub fn push(&mut self, key: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{key}: {message}"));
    }
    /// Records a problem that already names its key (`section.key: message`).
    pub fn push_qualified(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }
    /// Prefixes problems of a nested section with `section.`.
    pub fn extend_section(&mut self, section: &str, result: Result<(), ConfigErrors>) {
        if let Err(ConfigErrors(v)) = result {
            self.0
                .extend(v.into_iter().map(|p| format!("{section}.{p}")));
        }
    }
    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}
