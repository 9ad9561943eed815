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
    /// The target no longer exists on the hub (its `MemberCluster` is gone): nothing can
    /// be read from or written to it any more.
    #[error("{target} is gone: {reason}")]
    Gone {
        /// The target.
        target: String,
        /// Why it counts as gone.
        reason: String,
    },
    /// An object is in the way that fednet did not make (it lacks the network's ownership
    /// labels, or belongs to another network): it is neither adopted nor changed.
    #[error("{what} on {target} exists and was not made by this network ({why}); it is left alone")]
    NotOwned {
        /// The target.
        target: String,
        /// The object.
        what: String,
        /// Whose it seems to be.
        why: String,
    },
    /// This replica may not write any more (it lost, or could not renew, its lease).
    #[error("write to {target} refused: {reason}")]
    Fenced {
        /// The target.
        target: String,
        /// Why.
        reason: String,
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
            Self::Gone { .. }
            | Self::NotOwned { .. }
            | Self::Fenced { .. }
            | Self::Render(_)
            | Self::Other(_) => false,
        }
    }

    /// A short label for metrics (`kube`, `unreachable`, `http`, `gone`, `not_owned`,
    /// `fenced`, `render`, `other`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Unreachable { .. } => "unreachable",
            Self::Http { .. } => "http",
            Self::Gone { .. } => "gone",
            Self::NotOwned { .. } => "not_owned",
            Self::Fenced { .. } => "fenced",
            Self::Render(_) => "render",
            Self::Other(_) => "other",
        }
    }
}
