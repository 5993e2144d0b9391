//! Calls with pre-encoded requests whose answers are not decoded, for the
//! scenarios that measure the server's cheapest RPCs (`health`, `validate`).
//!
//! With two cores the tool has one, as the server does, and there a typed
//! client costs about as much per call as the server's answer: encoding a
//! request and decoding claims made `validate` dearer for the tool than
//! `health`, so their ratio measured the tool as much as the server. Sent
//! as bytes and drained unread, both cost the tool the same, as with any
//! HTTP/2 load generator; the status (trailers) is still read, so a call
//! that does not answer OK counts as such.

use bytes::{Buf as _, BufMut as _, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// `grpc.health.v1.Health/Check`.
pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
/// `gatehouse.v1.TokenService/ValidateToken`.
pub const VALIDATE_TOKEN: &str = "/gatehouse.v1.TokenService/ValidateToken";

/// A protobuf message encoded once, sent as many times as asked.
#[must_use]
pub fn encoded(message: &impl prost::Message) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

/// A client that sends [`Bytes`] as the request message and drains the answer.
#[derive(Debug, Clone)]
pub struct RawClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl RawClient {
    #[must_use]
    pub fn new(channel: Channel) -> Self {
        Self { grpc: tonic::client::Grpc::new(channel) }
    }

    /// One unary call of `path` (such as [`VALIDATE_TOKEN`]) with `body`.
    ///
    /// # Errors
    /// The call's status when it is not OK.
    pub async fn call(&mut self, path: &'static str, body: Bytes) -> Result<(), Status> {
        self.grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
        self.grpc.unary(Request::new(body), PathAndQuery::from_static(path), RawCodec).await.map(|_| ())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
