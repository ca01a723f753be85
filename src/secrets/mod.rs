//! Secrets at rest: values the database must not hold in clear (the
//! signing keys' private halves, TOTP secrets) are sealed with
//! XChaCha20-Poly1305 under a key-encryption key that lives in a file, never
//! in the database. Machinery only: what to seal and when is the domain's.
//!
//! A sealed value is `version (1) ‖ key id (8) ‖ nonce (24) ‖ ciphertext ‖
//! tag (16)`. The version, the key id and the caller's context are
//! authenticated, so a value cannot be moved to another row or relabelled.
//! Nonces are random: 192 bits make a collision negligible however many
//! values one key seals.

mod error;
mod file;

use std::fmt;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

pub use error::SecretsError;
pub use file::{create_key_file, loose_permissions, read_key_file};

/// The format's first byte. Never 0x30, the first byte of any DER
/// `SEQUENCE` (a PKCS#8 key stored in clear by an earlier authd).
const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// Bytes in a key-encryption key.
pub const KEY_LEN: usize = 32;

/// Names a key-encryption key without revealing it: the first 8 bytes of
/// the SHA-256 of the key (under a label of its own). Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A key-encryption key: 32 random bytes, wiped from memory when dropped.
pub struct SecretsKey {
    id: KeyId,
    material: Zeroizing<[u8; KEY_LEN]>,
}

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Result<Self, SecretsError> {
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(material.as_mut()).map_err(SecretsError::Random)?;
        Ok(Self::from_material(material))
    }

    /// A key from its base64 text (standard alphabet, padded, as `openssl
    /// rand -base64 32` writes it); surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, SecretsError> {
        use base64::Engine as _;
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| SecretsError::KeyNotBase64)?,
        );
        let material: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| SecretsError::KeyLength(decoded.len()))?;
        Ok(Self::from_material(Zeroizing::new(material)))
    }

    /// The key as base64, for writing its file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine as _;
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.material.as_ref()))
    }

    fn from_material(material: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"authd secrets key id\0");
        hash.update(material.as_ref());
        let digest = hash.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            id: KeyId(id),
            material,
        }
    }

    /// The key's id, which sealed values carry.
    pub fn id(&self) -> KeyId {
        self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher wipes its copy of the key when dropped (`zeroize`).
        XChaCha20Poly1305::new(&(*self.material).into())
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The key that seals, and the keys it replaced, which still open what
/// they sealed until `authd keys reseal` has sealed it again. Built once at
/// start; clones share the keys.
#[derive(Clone, Debug)]
pub struct SecretsKeyring {
    keys: Arc<Keys>,
}

#[derive(Debug)]
struct Keys {
    current: SecretsKey,
    previous: Vec<SecretsKey>,
}

impl SecretsKeyring {
    /// Seals with `current`; opens with it or any of `previous` (a previous
    /// key that is the current one is ignored).
    pub fn new(current: SecretsKey, previous: Vec<SecretsKey>) -> Self {
        let previous = previous
            .into_iter()
            .filter(|key| key.id != current.id)
            .collect();
        Self {
            keys: Arc::new(Keys { current, previous }),
        }
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> KeyId {
        self.keys.current.id
    }

    /// A value only the holder of the current key can compute from
    /// `message`, the same on every instance and after restarts (until the
    /// key is replaced): SHA-256 over the key, `label` and `message`, each
    /// length-prefixed. For values that must look random but repeat (the
    /// passkey options of unknown usernames), never for sealing.
    pub fn keyed_hash(&self, label: &[u8], message: &[u8]) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [self.keys.current.material.as_ref(), label, message] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }

    /// Seals `plaintext`; `context` is authenticated but not stored (e.g.
    /// `b"signing-key:<kid>"`, `b"totp:<user id>"`), so a sealed value
    /// cannot be moved to another row: it opens only with the same context.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let key = &self.keys.current;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        sealed.push(VERSION);
        sealed.extend_from_slice(&key.id.0);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(SecretsError::Random)?;
        sealed.extend_from_slice(&nonce);
        let aad = associated_data(&sealed[..1 + KEY_ID_LEN], context);
        let ciphertext = key
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretsError::TooLong)?;
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens a value sealed under the current key or a previous one, with
    /// the context it was sealed with.
    ///
    /// # Errors
    /// `Malformed` for bytes that are no sealed value, `UnknownKey` when
    /// its key is none of this keyring's, `Refused` when it was altered or
    /// sealed with another context.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let key_id = sealed_key_id(sealed).ok_or(SecretsError::Malformed)?;
        let key = std::iter::once(&self.keys.current)
            .chain(&self.keys.previous)
            .find(|key| key.id == key_id)
            .ok_or(SecretsError::UnknownKey(key_id))?;
        let (header, ciphertext) = sealed.split_at(HEADER_LEN);
        let nonce: [u8; NONCE_LEN] = header[1 + KEY_ID_LEN..]
            .try_into()
            .map_err(|_| SecretsError::Malformed)?;
        let aad = associated_data(&header[..1 + KEY_ID_LEN], context);
        key.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SecretsError::Refused)
    }

    /// Whether `sealed` was sealed under the current key (resealing skips
    /// those).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed_key_id(sealed) == Some(self.keys.current.id)
    }
}

/// Whether `value` has the shape of a sealed value (rather than, say, a
/// PKCS#8 key stored in clear by an earlier authd).
pub fn is_sealed(value: &[u8]) -> bool {
    sealed_key_id(value).is_some()
}

/// The id of the key `sealed` was sealed under, if it is a sealed value.
pub fn sealed_key_id(sealed: &[u8]) -> Option<KeyId> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != VERSION {
        return None;
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..=KEY_ID_LEN]);
    Some(KeyId(id))
}

/// What the tag covers besides the ciphertext: the version and key id as
/// stored, then the caller's context.
fn associated_data(version_and_key_id: &[u8], context: &[u8]) -> Vec<u8> {
    [version_and_key_id, context].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> SecretsKeyring {
        SecretsKeyring::new(SecretsKey::generate().unwrap(), Vec::new())
    }

    #[test]
    fn a_sealed_value_opens_to_what_was_sealed() {
        let keyring = keyring();
        let sealed = keyring.seal(b"a private key", b"signing-key:k1").unwrap();

        assert!(is_sealed(&sealed));
        assert!(keyring.is_current(&sealed));
        assert!(!sealed.windows(13).any(|window| window == b"a private key"));
        let opened = keyring.open(&sealed, b"signing-key:k1").unwrap();
        assert_eq!(opened.as_slice(), b"a private key");
    }

    #[test]
    fn sealing_twice_gives_two_different_values() {
        let keyring = keyring();
        assert_ne!(
            keyring.seal(b"secret", b"c").unwrap(),
            keyring.seal(b"secret", b"c").unwrap()
        );
    }

    #[test]
    fn a_value_moved_to_another_context_is_refused() {
        let keyring = keyring();
        let sealed = keyring.seal(b"secret", b"totp:alice").unwrap();
        assert!(matches!(
            keyring.open(&sealed, b"totp:mallory"),
            Err(SecretsError::Refused)
        ));
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let keyring = keyring();
        let sealed = keyring.seal(b"secret", b"c").unwrap();
        // The key id's bytes name another key; every other byte breaks the tag.
        for position in (0..sealed.len()).filter(|&p| !(1..=KEY_ID_LEN).contains(&p)) {
            let mut altered = sealed.clone();
            altered[position] ^= 0x01;
            assert!(
                keyring.open(&altered, b"c").is_err(),
                "byte {position} altered and still opened"
            );
        }
        assert!(matches!(
            keyring.open(&sealed[..sealed.len() - 1], b"c"),
            Err(SecretsError::Refused)
        ));
        assert!(matches!(
            keyring.open(&sealed[..HEADER_LEN], b"c"),
            Err(SecretsError::Malformed)
        ));
    }

    #[test]
    fn a_value_sealed_under_a_previous_key_opens_and_is_not_current() {
        let old = SecretsKey::generate().unwrap();
        let old_text = old.to_base64();
        let sealed = SecretsKeyring::new(old, Vec::new())
            .seal(b"secret", b"c")
            .unwrap();

        let rotated = SecretsKeyring::new(
            SecretsKey::generate().unwrap(),
            vec![SecretsKey::from_base64(&old_text).unwrap()],
        );
        assert_eq!(rotated.open(&sealed, b"c").unwrap().as_slice(), b"secret");
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal(b"secret", b"c").unwrap()));
    }

    #[test]
    fn a_value_sealed_under_an_unknown_key_is_refused_naming_that_key() {
        let stranger = SecretsKey::generate().unwrap();
        let stranger_id = stranger.id();
        let sealed = SecretsKeyring::new(stranger, Vec::new())
            .seal(b"secret", b"c")
            .unwrap();

        let error = keyring().open(&sealed, b"c").unwrap_err();
        assert!(matches!(error, SecretsError::UnknownKey(id) if id == stranger_id));
        assert!(
            error.to_string().contains(&stranger_id.to_string()),
            "{error}"
        );
    }

    #[test]
    fn a_clear_pkcs8_key_is_not_taken_for_a_sealed_value() {
        let der_prefix = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b];
        let clear = [der_prefix.as_slice(), &[7u8; 38]].concat();
        assert!(!is_sealed(&clear));
        assert!(matches!(
            keyring().open(&clear, b"c"),
            Err(SecretsError::Malformed)
        ));
    }

    #[test]
    fn key_text_must_be_32_bytes_of_base64() {
        let key = SecretsKey::generate().unwrap();
        let text = format!("  {}\n", key.to_base64().as_str());
        assert_eq!(SecretsKey::from_base64(&text).unwrap().id(), key.id());
        assert!(matches!(
            SecretsKey::from_base64("c2hvcnQ="),
            Err(SecretsError::KeyLength(5))
        ));
        assert!(matches!(
            SecretsKey::from_base64("not base64 at all!"),
            Err(SecretsError::KeyNotBase64)
        ));
        assert!(matches!(
            SecretsKey::from_base64(""),
            Err(SecretsError::KeyLength(0))
        ));
    }

    #[test]
    fn debug_output_shows_the_key_id_and_never_the_key() {
        let key = SecretsKey::generate().unwrap();
        let text = key.to_base64();
        let keyring = SecretsKeyring::new(key, Vec::new());
        let debug = format!("{keyring:?}");
        assert!(
            debug.contains(&keyring.current_key_id().to_string()),
            "{debug}"
        );
        assert!(!debug.contains(text.as_str()), "{debug}");
    }
}
