//! A reversible stand-in for the AEAD box.

/// A reversible stand-in for the AEAD box (XOR with a constant).
#[derive(Debug, Default)]
pub struct FakeSecretBox;

impl crate::ports::mfa::SecretBox for FakeSecretBox {
    fn seal(&self, plaintext: &[u8]) -> Result<gatehouse_domain::SealedSecret, crate::ports::mfa::SealError> {
        Ok(gatehouse_domain::SealedSecret { key_id: "fake".into(), data: plaintext.iter().map(|b| b ^ 0x5a).collect() })
    }

    fn open(&self, sealed: &gatehouse_domain::SealedSecret) -> Result<Vec<u8>, crate::ports::mfa::SealError> {
        if sealed.key_id != "fake" {
            return Err(crate::ports::mfa::SealError("unknown key".into()));
        }
        Ok(sealed.data.iter().map(|b| b ^ 0x5a).collect())
    }
}
