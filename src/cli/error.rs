//! How a command ends: the exit code of an error, decided here and only here from the error's
//! type, and the error printed with its causes.
//!
//! Exit codes: 0 success; 1 the work failed, including faults of contimg's own files (a corrupt or
//! unreadable database, an I/O error writing a product); 2 a usage or input error (an argument, a
//! manifest, contimg.toml, a name that does not exist); 3 the work failed for good (the data can
//! never make the product: a pipeline does not retry it); 75 (`EX_TEMPFAIL`) the PostgreSQL server
//! could not be reached or the connection was lost, whatever the command was doing (a pipeline's
//! worker hands the job back without spending a retry).
//!
//! Invariants: the class of an error is that of the outermost error in its chain whose type is
//! classified below (a context message says what was being done, not whose fault it was); an
//! unclassified error is 1. Typed errors are carried, never flattened to text, so their causes are
//! printed: `contimg: error: WHAT` then one `  caused by: WHY` line per cause the lines above do
//! not already say.

use std::error::Error;

use crate::manifest::ManifestError;
use crate::mosaic::build::BuildError;
use crate::mosaic::plan::PlanError;
use crate::mosaic::qa::QaError;
use crate::mosaic::qa::config::QaConfigError;
use crate::mosaic::sim::SimError;
use crate::mosaic::tiers::TierError;
use crate::pipeline::PipelineError;
use crate::pipeline::cron::CronError;
use crate::time::TimeError;
use crate::workspace::WorkspaceError;
use crate::workspace::config::ConfigError;
use crate::workspace::session::StoreError;

/// The exit code of work that failed for good: the data can never make the product, so a
/// pipeline does not retry the job (see `pipeline::worker`).
pub const PERMANENT_EXIT: i32 = crate::pipeline::worker::PERMANENT_EXIT;

/// Whose fault an error is, which is what its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The work failed (exit 1): the same command may succeed later, or contimg's own files
    /// need care.
    Failed,
    /// A usage or input error (exit 2): the same input gives the same error.
    Input,
    /// The work failed for good (exit 3): the same data fails the same way.
    Permanent,
    /// The database server could not be reached (exit 75): try again when it is back.
    Unavailable,
}

impl Class {
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Failed => 1,
            Class::Input => 2,
            Class::Permanent => PERMANENT_EXIT,
            Class::Unavailable => crate::pipeline::worker::UNAVAILABLE_EXIT,
        }
    }

    fn input_if(is_input: bool) -> Class {
        if is_input {
            Class::Input
        } else {
            Class::Failed
        }
    }
}

/// An error the command itself finds, with its class: 2 for bad input or usage, 1 for work that
/// failed, 3 for work that failed for good. [`CliError::Because`] keeps the typed error that led
/// to it as its cause.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
    /// The work failed and the same data would fail it again (exit [`PERMANENT_EXIT`]).
    #[error("{0}")]
    Permanent(String),
    /// What the command could not do, of this class, because of `source`.
    #[error("{msg}")]
    Because {
        class: Class,
        msg: String,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}

impl CliError {
    /// An input error (exit 2) caused by `source`.
    pub fn input_because(
        msg: impl Into<String>,
        source: impl Error + Send + Sync + 'static,
    ) -> Self {
        CliError::Because {
            class: Class::Input,
            msg: msg.into(),
            source: Box::new(source),
        }
    }
}

/// The class of each error type the commands meet.
trait Classify {
    fn class(&self) -> Class;
}

impl Classify for CliError {
    fn class(&self) -> Class {
        match self {
            CliError::Input(_) => Class::Input,
            CliError::Failed(_) => Class::Failed,
            CliError::Permanent(_) => Class::Permanent,
            CliError::Because { class, .. } => *class,
        }
    }
}

impl Classify for StoreError {
    fn class(&self) -> Class {
        if self.is_connection_lost() {
            return Class::Unavailable;
        }
        Class::input_if(self.is_input())
    }
}

impl Classify for WorkspaceError {
    fn class(&self) -> Class {
        match self {
            WorkspaceError::NotFound { .. } | WorkspaceError::NotAWorkspace { .. } => Class::Input,
            WorkspaceError::Tier(_) => Class::Input,
            // The workspace directory itself cannot be read.
            WorkspaceError::Io { .. } => Class::Failed,
            WorkspaceError::Config(e) => e.class(),
            WorkspaceError::Store(e) => e.class(),
            WorkspaceError::Pipeline(e) => e.class(),
        }
    }
}

impl Classify for ConfigError {
    fn class(&self) -> Class {
        match self {
            // contimg.toml is there but cannot be read (permissions, I/O): not a mistake in it.
            ConfigError::Read { .. } => Class::Failed,
            ConfigError::Parse { .. } | ConfigError::Mode { .. } | ConfigError::Tier { .. } => {
                Class::Input
            }
        }
    }
}

impl Classify for PipelineError {
    fn class(&self) -> Class {
        if self.is_connection_lost() {
            return Class::Unavailable;
        }
        Class::input_if(self.is_input())
    }
}

impl Classify for CronError {
    fn class(&self) -> Class {
        Class::input_if(self.is_input())
    }
}

impl Classify for PlanError {
    fn class(&self) -> Class {
        match self {
            // Late data can mend an empty window: a pipeline retries.
            PlanError::NoImages { .. } => Class::Failed,
            PlanError::AllLeftOut { .. } => Class::Permanent,
            PlanError::NameTaken { .. }
            | PlanError::BadWindow { .. }
            | PlanError::NoPlan { .. } => Class::Input,
            PlanError::Store(e) => e.class(),
        }
    }
}

impl Classify for BuildError {
    fn class(&self) -> Class {
        match self {
            BuildError::Store(e) => e.class(),
            e => Class::input_if(e.is_input()),
        }
    }
}

impl Classify for QaError {
    fn class(&self) -> Class {
        match self {
            QaError::Read(_)
            | QaError::Wcs { .. }
            | QaError::NoBeam { .. }
            | QaError::Empty { .. }
            | QaError::NoMosaic { .. } => Class::Input,
            QaError::Catalog(c) => Class::input_if(c.is_input()),
            QaError::Store(e) => e.class(),
            _ => Class::Failed,
        }
    }
}

impl Classify for SimError {
    fn class(&self) -> Class {
        Class::input_if(matches!(self, SimError::Invalid { .. }))
    }
}

/// Errors that are always the input's: a manifest, a tier name or table, a time, a `[qa]` value.
macro_rules! always_input {
    ($($t:ty),*) => {$(
        impl Classify for $t {
            fn class(&self) -> Class {
                Class::Input
            }
        }
    )*};
}
always_input!(ManifestError, TierError, TimeError, QaConfigError);

/// The class of one error of a chain, when its type is classified.
fn class_of(e: &(dyn Error + 'static)) -> Option<Class> {
    macro_rules! first_of {
        ($($t:ty),*) => {$(
            if let Some(x) = e.downcast_ref::<$t>() {
                return Some(x.class());
            }
        )*};
    }
    first_of!(
        CliError,
        WorkspaceError,
        ConfigError,
        StoreError,
        PipelineError,
        CronError,
        PlanError,
        BuildError,
        QaError,
        SimError,
        ManifestError,
        TierError,
        TimeError,
        QaConfigError
    );
    None
}

/// The class of an error: that of the outermost classified error of its chain, else failed work.
pub fn class(err: &anyhow::Error) -> Class {
    err.chain().find_map(class_of).unwrap_or(Class::Failed)
}

/// The exit code for an error (see the module's table).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    class(err).exit_code()
}

/// An error and every cause under it, outermost first: `contimg: error: WHAT` and one
/// `  caused by: WHY` line per cause. A cause whose text the lines already hold (a message
/// written as "{path}: {source}" that also keeps the source) is not repeated.
pub fn report(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if out.is_empty() {
            out.push_str("contimg: error: ");
        } else {
            out.push_str("\n  caused by: ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("plan.json: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn the_report_names_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let err = anyhow::Error::new(Outer { source: io }).context("building the mosaic");
        assert_eq!(
            report(&err),
            "contimg: error: building the mosaic\n  caused by: plan.json: disk full"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(report(&plain), "contimg: error: outer\n  caused by: inner");
    }

    #[test]
    fn the_outermost_classified_error_decides_the_exit_code() {
        let input = anyhow::Error::new(CliError::input_because(
            "cannot create out/",
            std::io::Error::other("read-only file system"),
        ));
        assert_eq!(exit_code(&input), 2);
        assert!(report(&input).contains("caused by: read-only file system"));
        // A context message says what was being done; the typed error under it decides.
        let plan = anyhow::Error::new(PlanError::BadWindow {
            start: "b".into(),
            end: "a".into(),
        })
        .context("planning");
        assert_eq!(exit_code(&plan), 2);
        let corrupt = anyhow::Error::new(WorkspaceError::Store(StoreError::NotADatabase {
            path: "pipeline.sqlite3".into(),
            why: "the file is empty (0 bytes)".into(),
        }));
        assert_eq!(exit_code(&corrupt), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("anything else")), 1);
        assert_eq!(exit_code(&CliError::Permanent("x".into()).into()), 3);
    }
}
