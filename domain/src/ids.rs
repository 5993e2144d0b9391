//! Identifiers. Every id is a UUID (v7, time ordered) shown in its canonical
//! hyphenated text form; the newtypes keep a session id from being passed
//! where a user id is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID read from storage or made by the id generator.
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            /// Accepts only the canonical hyphenated form, the one we hand out.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::fmt::Hyphenated::from_str(s).map(|h| Self(h.into_uuid()))
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A login session: one sign-in on one device, with its refresh-token chain.
    SessionId
);
uuid_id!(
    /// The `jti` of one access token.
    TokenId
);
uuid_id!(
    /// An organization (tenant).
    OrganizationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_canonical_text() {
        let id = UserId::from_uuid(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001));
        let text = id.to_string();
        assert_eq!(text, "01930000-0000-7000-8000-000000000001");
        assert_eq!(text.parse::<UserId>().ok(), Some(id));
    }

    #[test]
    fn non_canonical_id_text_is_refused() {
        assert!("0193000000007000800000000000000".parse::<UserId>().is_err());
        assert!("{01930000-0000-7000-8000-000000000001}".parse::<UserId>().is_err());
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }
}
