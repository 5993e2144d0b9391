//! Denylist keys, `{prefix}sid:{uuid}`, `{prefix}jti:{uuid}` and
//! `{prefix}uid:{uuid}`, written straight into the command buffer:
//! validating a token builds no `String`. Next to them live the generation
//! marker `{prefix}denylist:generation` and the short-lived
//! `{prefix}denylist:rebuild:{nonce}` key of each rebuild in progress.

use std::io::Write as _;

use gatehouse_application::ports::denylist::DenyKey;
use redis::{RedisWrite, ToRedisArgs};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

/// The key prefixes of one denylist, built once at connect time.
#[derive(Debug)]
pub(crate) struct KeyPrefixes {
    session: Box<[u8]>,
    token: Box<[u8]>,
    user: Box<[u8]>,
    generation: Box<[u8]>,
    rebuild: String,
}

impl KeyPrefixes {
    pub(crate) fn new(prefix: &str) -> Self {
        let with = |kind: &str| format!("{prefix}{kind}").into_bytes().into_boxed_slice();
        Self {
            session: with("sid:"),
            token: with("jti:"),
            user: with("uid:"),
            generation: with("denylist:generation"),
            rebuild: format!("{prefix}denylist:rebuild:"),
        }
    }

    /// The generation marker: written by every completed rebuild.
    pub(crate) fn generation(&self) -> &[u8] {
        &self.generation
    }

    /// The key that lives while the rebuild `nonce` runs.
    pub(crate) fn rebuild(&self, nonce: u128) -> String {
        format!("{}{nonce:032x}", self.rebuild)
    }

    /// The key of a deleted account.
    pub(crate) fn user<'a>(&'a self, id: &'a Uuid) -> Key<'a> {
        Key { prefix: &self.user, id }
    }

    /// The key of a revoked session.
    pub(crate) fn session<'a>(&'a self, id: &'a Uuid) -> Key<'a> {
        Key { prefix: &self.session, id }
    }

    /// The key of a revoked access token.
    pub(crate) fn token<'a>(&'a self, id: &'a Uuid) -> Key<'a> {
        Key { prefix: &self.token, id }
    }

    pub(crate) fn of<'a>(&'a self, key: &'a DenyKey) -> Key<'a> {
        match key {
            DenyKey::Session(id) => self.session(id.as_uuid()),
            DenyKey::Token(id) => self.token(id.as_uuid()),
            DenyKey::User(id) => self.user(id.as_uuid()),
        }
    }

    /// The length in bytes of every entry key (the prefixes are equally long).
    pub(crate) fn key_len(&self) -> usize {
        self.session.len() + Hyphenated::LENGTH
    }
}

/// One key, as a single command argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    prefix: &'a [u8],
    id: &'a Uuid,
}

impl ToRedisArgs for Key<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut text = [0_u8; Hyphenated::LENGTH];
        let id = self.id.as_hyphenated().encode_lower(&mut text);
        let mut arg = out.writer_for_next_arg();
        // The writer appends to the command's in-memory buffer: it cannot fail.
        let _ = arg.write_all(self.prefix).and_then(|()| arg.write_all(id.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use gatehouse_domain::{SessionId, TokenId, UserId};

    use super::*;

    const ID: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00ab);

    #[test]
    fn keys_are_prefix_kind_and_canonical_uuid() {
        let prefixes = KeyPrefixes::new("gatehouse:");
        let sid = DenyKey::Session(SessionId::from_uuid(ID));
        let jti = DenyKey::Token(TokenId::from_uuid(ID));
        assert_eq!(
            prefixes.of(&sid).to_redis_args(),
            vec![b"gatehouse:sid:01930000-0000-7000-8000-0000000000ab".to_vec()]
        );
        assert_eq!(
            prefixes.of(&jti).to_redis_args(),
            vec![b"gatehouse:jti:01930000-0000-7000-8000-0000000000ab".to_vec()]
        );
        assert_eq!(
            prefixes.of(&DenyKey::User(UserId::from_uuid(ID))).to_redis_args(),
            vec![b"gatehouse:uid:01930000-0000-7000-8000-0000000000ab".to_vec()]
        );
        assert_eq!(prefixes.key_len(), "gatehouse:sid:".len() + 36);
        assert_eq!(prefixes.generation(), b"gatehouse:denylist:generation");
        assert_eq!(prefixes.rebuild(0xab), "gatehouse:denylist:rebuild:000000000000000000000000000000ab");
    }

    #[test]
    fn each_key_is_one_command_argument() {
        let prefixes = KeyPrefixes::new("p:");
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(prefixes.session(&ID)).arg(prefixes.token(&ID));
        assert_eq!(cmd.args_iter().count(), 3);
    }
}
