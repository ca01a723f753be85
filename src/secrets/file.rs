//! Key files: 32 random bytes in base64 on one line, readable by authd's
//! user alone.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{SecretsError, SecretsKey};

/// Reads a key file.
///
/// # Errors
/// `KeyFile` naming the path when it cannot be read or holds no key.
pub fn read_key_file(path: &Path) -> Result<SecretsKey, SecretsError> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|error| key_file_error(path, error))?);
    SecretsKey::from_base64(&text).map_err(|error| SecretsError::KeyFile {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// Creates a key file with a new random key, readable and writable by its
/// owner only (0600), unless one exists already: then that one is read.
/// The key is written whole to a temporary file first and linked into
/// place, so that a process racing to create the same file reads either
/// nothing or the whole key, never half of it. Returns the key and whether
/// it was created.
pub fn create_key_file(path: &Path) -> Result<(SecretsKey, bool), SecretsError> {
    if path.exists() {
        return read_key_file(path).map(|key| (key, false));
    }
    let key = SecretsKey::generate()?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(SecretsError::Random)?;
    let temporary = PathBuf::from(format!(
        "{}.{}.tmp",
        path.display(),
        u64::from_le_bytes(suffix)
    ));
    let written = write_new(&temporary, &key);
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    // The temporary name goes whatever happened; the key lives on under
    // `path` if the link was made.
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok((key, true)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key_file(path).map(|key| (key, false))
        }
        Err(error) => Err(key_file_error(path, error)),
    }
}

fn write_new(path: &Path, key: &SecretsKey) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The file's permission bits when users other than authd's may read or
/// write it: anything for others, and anything for the group unless it is
/// authd's own group reading (a secret mounted with Kubernetes' `fsGroup`,
/// say, is 0440 in authd's group).
pub fn loose_permissions(path: &Path) -> Option<u32> {
    let metadata = std::fs::metadata(path).ok()?;
    let mode = metadata.mode() & 0o777;
    // SAFETY: getegid has no preconditions and cannot fail.
    let own_group = metadata.gid() == unsafe { libc::getegid() };
    let group_may = if own_group { 0o030 } else { 0o070 };
    (mode & (0o007 | group_may) != 0).then_some(mode)
}

fn key_file_error(path: &Path, error: std::io::Error) -> SecretsError {
    SecretsError::KeyFile {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_file_is_private_and_read_back_the_same() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("authd.db.secrets-key");

        let (created, fresh) = create_key_file(&path).unwrap();
        assert!(fresh);
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(loose_permissions(&path), None);
        let (again, fresh) = create_key_file(&path).unwrap();
        assert!(!fresh);
        assert_eq!(again.id(), created.id());
        assert_eq!(read_key_file(&path).unwrap().id(), created.id());
        assert_eq!(
            std::fs::read_dir(directory.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );
    }

    #[test]
    fn a_key_file_is_loose_when_others_or_another_group_may_use_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key");
        create_key_file(&path).unwrap();
        let with_mode = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            loose_permissions(&path)
        };
        assert_eq!(with_mode(0o400), None);
        // A new file is in the creator's group: authd's own may read it.
        assert_eq!(with_mode(0o440), None);
        assert_eq!(with_mode(0o460), Some(0o460));
        assert_eq!(with_mode(0o644), Some(0o644));
        assert_eq!(with_mode(0o604), Some(0o604));
    }

    #[test]
    fn unreadable_or_garbled_key_files_name_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.key");
        let garbled = directory.path().join("garbled.key");
        std::fs::write(&garbled, "hunter2 is not a key\n").unwrap();
        for path in [missing, garbled] {
            let error = read_key_file(&path).unwrap_err().to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
    }
}
