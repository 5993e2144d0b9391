//! Gatehouse Redis adapter: the token denylist ([`RedisDenylist`]) shared by
//! every replica, kept in Redis with one key per revoked session or access
//! token that Redis itself expires when the last token it could refuse has.
//!
//! Every call is bounded by the timeout given to [`RedisDenylist::connect`];
//! a slow or dead Redis yields a `DenylistError` quickly, and token
//! validation then fails closed.

mod denylist;
mod key;

pub use denylist::RedisDenylist;
