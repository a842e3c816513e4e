//! What can go wrong in a client command, and how it is reported:
//! `error: <CODE>: <message>` for a failed call, `error: <message>`
//! otherwise, on stderr; exit status 1, or 2 for usage errors.

use std::{error::Error as _, fmt, io};

use tonic::Status;

/// Why a client command failed.
#[derive(Debug)]
pub enum Failure {
    /// A call failed with this status: the broker's answer, or the client's
    /// own for a broken connection.
    Status(Status),
    /// The broker at `server` could not be reached.
    Connect {
        /// The `--server` URL.
        server: String,
        /// Why the connection failed.
        source: tonic::transport::Error,
    },
    /// The settings cannot work (an unreadable `--ca-cert`, https without
    /// one); the message says what to change.
    Setup(String),
    /// The command line is incomplete or contradictory (exit status 2).
    Usage(String),
    /// Some frames of a PublishStream were not appended (each was reported
    /// as its answer came); the others were.
    Frames {
        /// How many frames failed.
        failed: u64,
        /// How many frames were answered.
        frames: u64,
    },
    /// A PublishStream broke and reconnecting did not succeed: `frames`
    /// frames, from frame `first` (lines `lines.0..=lines.1` of stdin), were
    /// not answered, so they may or may not have been appended.
    GaveUp {
        /// Why the last attempt failed.
        status: Status,
        /// How many reconnects were tried.
        attempts: u32,
        /// How many frames were not answered.
        frames: u64,
        /// The first of them.
        first: u64,
        /// Their lines of stdin, first and last.
        lines: (u64, u64),
    },
    /// Reading stdin or writing stdout failed.
    Io(io::Error),
    /// Stdout was closed by its reader (`| head`): not an error, the command
    /// stops quietly.
    OutputClosed,
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::OutputClosed => 0,
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => {
                write!(f, "{}: {}", code_name(status.code()), status.message())?;
                if status.message().is_empty() {
                    f.write_str(status.code().description())?;
                }
                Ok(())
            }
            Self::Connect { server, source } => {
                write!(f, "cannot connect to {server}")?;
                // The transport's own text is generic ("transport error")
                // and its causes repeat themselves: print each once.
                let mut causes: Vec<String> = Vec::new();
                let mut cause = source.source();
                while let Some(error) = cause {
                    let text = error.to_string();
                    if causes.last() != Some(&text) {
                        causes.push(text);
                    }
                    cause = error.source();
                }
                if causes.is_empty() {
                    causes.push(source.to_string());
                }
                for text in causes {
                    write!(f, ": {text}")?;
                }
                Ok(())
            }
            Self::Setup(message) | Self::Usage(message) => f.write_str(message),
            Self::Frames { failed, frames } => write!(
                f,
                "{failed} of {frames} frames were not appended (each is reported above); the others were"
            ),
            Self::GaveUp {
                status,
                attempts,
                frames,
                first,
                lines,
            } => write!(
                f,
                "{}: {}; gave up after {attempts} reconnects: {frames} frames from frame {first} (lines {}..{}) were not answered and may not have been appended",
                code_name(status.code()),
                status.message(),
                lines.0,
                lines.1
            ),
            Self::Io(error) => write!(f, "{error}"),
            Self::OutputClosed => f.write_str("stdout closed"),
        }
    }
}

pub use gostream_api::code_name;

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self::Status(status)
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::BrokenPipe {
            Self::OutputClosed
        } else {
            Self::Io(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_reported_with_its_code_name() {
        let failure = Failure::from(Status::not_found("topic \"x\" does not exist"));
        assert_eq!(failure.to_string(), "NOT_FOUND: topic \"x\" does not exist");
        assert_eq!(failure.exit_code(), 1);
        let bare = Failure::from(Status::new(tonic::Code::Unavailable, ""));
        assert!(bare.to_string().starts_with("UNAVAILABLE: "), "{bare}");
    }

    #[test]
    fn a_closed_stdout_ends_quietly_and_usage_errors_exit_2() {
        let closed = Failure::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(matches!(closed, Failure::OutputClosed));
        assert_eq!(closed.exit_code(), 0);
        assert_eq!(Failure::Usage("no".into()).exit_code(), 2);
    }
}
