//! Profile errors: each names the file, the line, and the key path; they are reported together.

use std::fmt;

/// One problem in one profile file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ProfileError {
    file: String,
    line: Option<usize>,
    path: String,
    message: String,
}

impl ProfileError {
    pub(crate) fn new(file: &str, line: Option<usize>, path: String, message: String) -> Self {
        Self {
            file: file.to_owned(),
            line,
            path,
            message,
        }
    }

    /// The file (as the caller named it).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The 1-based line, where known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key path, e.g. `obligation[2].rule[0].interval_minutes`; empty for the whole file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let loc = match self.line {
            Some(line) => format!("{}:{line}", self.file),
            None => self.file.clone(),
        };
        if self.path.is_empty() {
            format!("{loc}: {}", self.message)
        } else {
            format!("{loc}: `{}`: {}", self.path, self.message)
        }
    }
}

/// Every problem found, in file order. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ProfileErrors(pub(crate) Vec<ProfileError>);

impl ProfileErrors {
    /// The individual errors.
    pub fn errors(&self) -> &[ProfileError] {
        &self.0
    }
}

impl fmt::Display for ProfileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} error{} in profiles:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// A name passed to [`crate::Registry::select`] that is neither a profile id nor an alias.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile or jurisdiction `{name}`; known: {known}")]
pub struct SelectError {
    pub(crate) name: String,
    pub(crate) known: String,
}
