//! Why `pmemlab oracle` could not compare: one sentence each, exit code 2.

use std::path::PathBuf;

/// An oracle run that could not be carried out (bad input or a missing
/// tool), as opposed to a disagreement, which is a result.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// The scenario could not be loaded.
    #[error("{0}")]
    Scenario(#[from] crate::run::RunError),
    /// A program or file the oracle needs is not installed.
    #[error("{what} is not installed: {detail}; install the Debian package {package} (scripts/ensure-qemu.sh does)")]
    Missing {
        /// What is missing.
        what: String,
        /// Where it was looked for.
        detail: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The kernel given is not one the oracle can boot.
    #[error("{}: {reason}", path.display())]
    BadKernel {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A step the guest agent or the real host cannot do.
    #[error("step {index} ({op}): the real system cannot do this step: {reason}")]
    Unsupported {
        /// Position of the step.
        index: usize,
        /// Its op.
        op: String,
        /// Why.
        reason: String,
    },
    /// A device the oracle cannot set up in QEMU.
    #[error("device '{id}': the real system cannot run it: {reason}")]
    UnsupportedDevice {
        /// The device.
        id: String,
        /// Why.
        reason: String,
    },
    /// An option value is wrong.
    #[error("{0}")]
    Usage(String),
    /// The guest did not get to a point in time.
    #[error("{0}")]
    Timeout(String),
    /// QEMU or the guest agent failed.
    #[error("{0}")]
    Guest(String),
    /// Host I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl OracleError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OracleError {
        let context = context.into();
        move |source| OracleError::Io { context, source }
    }
}
