//! Typed backend errors.

/// An error from a backend operation on one target. Messages never carry secret values.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The Kubernetes API answered with an error.
    #[error("{verb} {what} on {target}: {source}")]
    Kube {
        /// What was being done (`apply`, `list`, `delete`).
        verb: &'static str,
        /// The object or kind concerned.
        what: String,
        /// The target.
        target: String,
        /// The client error (boxed: it is large and errors travel by value).
        #[source]
        source: Box<kube::Error>,
    },
    /// No client could be had for the target (credentials missing or invalid, unknown member).
    #[error("no connection to {target}: {reason}")]
    Unreachable {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// A REST controller answered with an error.
    #[error("{target}: HTTP {status} from {endpoint}")]
    Http {
        /// The target.
        target: String,
        /// Request path.
        endpoint: String,
        /// Status code.
        status: u16,
    },
    /// The backend cannot render the plan (a bug or an unsupported combination).
    #[error("cannot render: {0}")]
    Render(String),
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    /// Whether retrying may help: connection problems, throttling and server errors.
    /// Validation errors (4xx other than 409/429) are not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => {
                    status.code == 409 || status.code == 429 || status.code >= 500
                }
                _ => true,
            },
            Self::Unreachable { .. } => true,
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::Render(_) | Self::Other(_) => false,
        }
    }

    /// A short label for metrics (`kube`, `unreachable`, `http`, `render`, `other`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Unreachable { .. } => "unreachable",
            Self::Http { .. } => "http",
            Self::Render(_) => "render",
            Self::Other(_) => "other",
        }
    }
}
