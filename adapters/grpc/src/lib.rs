//! Gatehouse gRPC adapter: serves the `gatehouse.v1` contract in `proto/` with
//! tonic, turning requests into domain values and use-case calls, and every
//! `AppError` into a `tonic::Status` with `google.rpc` details in one place
//! ([`error::status`]). Also serves `grpc.health.v1` (fed by real dependency
//! probes) and server reflection, so grpcurl works with no proto files.
//!
//! Who calls is found once per request, before any handler runs: the
//! client's address (behind trusted proxies) and, on the services for
//! signed-in users, the claims of the Bearer token (`caller.rs`).
//!
//! Tonic and prost types stop here: nothing this crate exports to the rest of
//! the server, except the generated client stubs in [`pb`], carries them.

mod audit;
mod auth;
mod caller;
mod client_ip;
mod codec;
mod connection;
pub mod error;
mod factors;
mod fields;
mod guard;
mod limits;
mod mfa;
mod organization;
mod organization_fields;
mod profile;
mod proof;
mod server;
mod session;
mod token;
mod user;

pub use audit::AuditApi;
pub use auth::AuthApi;
pub use client_ip::{ClientIpPolicy, IpNet};
pub use limits::ServerLimits;
pub use mfa::MfaApi;
pub use organization::OrganizationApi;
pub use server::{GrpcServer, ServeError};
pub use session::SessionApi;
pub use token::TokenApi;
pub use user::UserApi;

/// The generated `gatehouse.v1` messages, servers and clients.
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs, missing_debug_implementations)]
    tonic::include_proto!("gatehouse.v1");
}

/// The encoded descriptor set of `gatehouse.v1`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gatehouse_descriptor");

/// Largest request message accepted by default, in bytes
/// ([`ServerLimits::max_message_bytes`]). Gatehouse requests are small;
/// refusing big ones early bounds the memory a caller can make us spend.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prost::Message;

    /// grpcurl needs every service and every imported type (FieldMask,
    /// Timestamp) from reflection alone.
    #[test]
    fn descriptor_set_holds_every_service_and_its_imports() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let files: Vec<_> = set.file.iter().map(|f| f.name()).collect();
        for name in [
            "gatehouse/v1/audit.proto",
            "gatehouse/v1/auth.proto",
            "gatehouse/v1/mfa.proto",
            "gatehouse/v1/organization.proto",
            "gatehouse/v1/session.proto",
            "gatehouse/v1/token.proto",
            "gatehouse/v1/user.proto",
            "google/protobuf/field_mask.proto",
            "google/protobuf/timestamp.proto",
        ] {
            assert!(files.contains(&name), "{name} missing from {files:?}");
        }
    }
}
