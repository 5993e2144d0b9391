//! The protobuf codec of every generated service: prost's, except that a
//! message that does not decode (invalid UTF-8 in a string, a wrong wire
//! type, a truncated field) is the caller's mistake, answered
//! `INVALID_ARGUMENT` with reason `MALFORMED_REQUEST`, not prost's
//! `INTERNAL` with a text that names our message types (OWASP ASVS 5.0
//! V2.2.1 input validation, V16.5.1 generic errors).
//!
//! The generated clients share the codec, so they too report an
//! undecodable message this way; Gatehouse itself never sends one.

use std::collections::HashMap;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::ERROR_DOMAIN;

/// The `ErrorInfo.reason` of an undecodable request.
pub const MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";

/// [`ProstCodec`] with decode errors mapped to `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct StrictCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = StrictDecoder<<ProstCodec<T, U> as Codec>::Decoder>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(self.0.decoder())
    }
}

/// Decodes with the inner decoder; its only failure is a malformed message.
#[derive(Debug)]
pub struct StrictDecoder<D>(D);

impl<D: Decoder<Error = Status>> Decoder for StrictDecoder<D> {
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        self.0.decode(buf).map_err(|error| {
            tracing::debug!(error = %error.message(), "undecodable request message");
            malformed()
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The status of a message that is not valid protobuf for its RPC. It names
/// no field: a malformed message may fail before any field is known.
#[must_use]
pub fn malformed() -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(MALFORMED_REQUEST, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(Code::InvalidArgument, "the request is not a valid protobuf message", details)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tonic_types::StatusExt;

    #[test]
    fn malformed_is_invalid_argument_with_a_stable_reason_and_no_type_names() {
        let status = super::malformed();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let info = status.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("MALFORMED_REQUEST", "gatehouse"));
        assert!(!status.message().contains("Request"), "{}", status.message());
    }
}
