//! Ids nobody can guess or enumerate (token ids, key ids), from the OS's
//! random number generator.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::AuthError;

/// `N` random bytes, base64url: ids nobody can guess or enumerate.
pub(super) fn random_id<const N: usize>() -> Result<String, AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(AuthError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
