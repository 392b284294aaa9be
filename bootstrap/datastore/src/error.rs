use tonic::{Code, Status};

/// Everything that can go wrong inside the datastore. Client-visible
/// variants carry etcd's own messages so that etcd clients recognise them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted { compact_revision: i64 },
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("invalid datastore endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("mysql: {0}")]
    Mysql(#[from] mysql::Error),
    #[error("datastore I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(String),
    #[error("datastore is shutting down")]
    ShuttingDown,
    #[error("corrupt datastore: {0}")]
    Corrupt(String),
}

impl Error {
    /// True for errors caused by the request itself: they fail that request
    /// only, never the batch it was committed with.
    pub fn is_request_error(&self) -> bool {
        !matches!(
            self,
            Error::Sqlite(_)
                | Error::Postgres(_)
                | Error::Mysql(_)
                | Error::Io(_)
                | Error::Corrupt(_)
                | Error::Storage(_)
                | Error::ShuttingDown
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = match &err {
            Error::Compacted { .. } | Error::FutureRevision | Error::LeaseTtlTooLarge => {
                Code::OutOfRange
            }
            Error::LeaseNotFound => Code::NotFound,
            Error::LeaseExists => Code::FailedPrecondition,
            Error::KeyNotFound
            | Error::EmptyKey
            | Error::DuplicateKey
            | Error::TooManyOps
            | Error::InvalidRequest(_)
            | Error::InvalidEndpoint { .. } => Code::InvalidArgument,
            Error::Unsupported(_) => Code::Unimplemented,
            Error::ShuttingDown => Code::Unavailable,
            Error::Sqlite(_)
            | Error::Postgres(_)
            | Error::Mysql(_)
            | Error::Io(_)
            | Error::Corrupt(_)
            | Error::Storage(_) => Code::Internal,
        };
        Status::new(code, err.to_string())
    }
}
