//! The etcd v3 API as Rust types and tonic services.
//!
//! The code under `src/gen` is generated from `proto/` and checked in so that
//! builds need no protobuf compiler; `tests/it/codegen.rs` regenerates it and
//! fails when the two drift apart.

#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod mvccpb {
    include!("gen/mvccpb.rs");
}

#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod etcdserverpb {
    include!("gen/etcdserverpb.rs");
}
