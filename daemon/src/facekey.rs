//! The key that seals face templates at rest (ChaCha20-Poly1305), kept in its own file
//! beside, not inside, the database: a copied database alone opens no template.
//!
//! The key file holds 32 random bytes, mode 0600 in a 0700 folder; it is made on first use.
//! A key file readable by group or others is refused (named), as is one of the wrong size.
//! Each template is sealed with a fresh random nonce and the student id and model name as
//! associated data, so a template moved to another student's row fails to open.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The template key.
pub(crate) struct FaceKey {
    cipher: ChaCha20Poly1305,
    path: PathBuf,
}

impl std::fmt::Debug for FaceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaceKey({})", self.path.display())
    }
}

fn aad(student_id: &str, model: &str) -> Vec<u8> {
    format!("ketang-face-template/v1\0{student_id}\0{model}").into_bytes()
}

impl FaceKey {
    /// Opens the key at `path`, making it (and its folder, 0700) when missing.
    ///
    /// # Errors
    /// The file is readable by others, has the wrong size, or cannot be read or written.
    pub(crate) fn open_or_create(path: &Path) -> anyhow::Result<Self> {
        let key = match std::fs::metadata(path) {
            Ok(m) => {
                if m.permissions().mode() & 0o077 != 0 {
                    bail!(
                        "face template key {} is readable by others (mode {:o}); chmod 600 it",
                        path.display(),
                        m.permissions().mode() & 0o777
                    );
                }
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading face template key {}", path.display()))?;
                if bytes.len() != 32 {
                    bail!(
                        "face template key {} has {} bytes, not 32",
                        path.display(),
                        bytes.len()
                    );
                }
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("making {} private", dir.display()))?;
                let mut bytes = vec![0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .with_context(|| format!("creating face template key {}", path.display()))?;
                f.write_all(&bytes)
                    .and_then(|()| f.sync_all())
                    .with_context(|| format!("writing face template key {}", path.display()))?;
                tracing::info!(path = %path.display(), "Face template key created.");
                bytes
            }
            Err(e) => {
                return Err(e).with_context(|| format!("face template key {}", path.display()));
            }
        };
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            path: path.to_owned(),
        })
    }

    /// Seals `embedding` of `student_id` made by `model`: (nonce, ciphertext).
    pub(crate) fn seal(
        &self,
        student_id: &str,
        model: &str,
        embedding: &[f32],
    ) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let plain: Vec<u8> = embedding.iter().flat_map(|x| x.to_le_bytes()).collect();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(student_id, model),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a face template failed"))?;
        Ok((nonce.to_vec(), sealed))
    }

    /// Opens a sealed template.
    ///
    /// # Errors
    /// The template was not sealed with this key for this student and model (or is damaged).
    pub(crate) fn open(
        &self,
        student_id: &str,
        model: &str,
        nonce: &[u8],
        sealed: &[u8],
    ) -> anyhow::Result<Vec<f32>> {
        if nonce.len() != 12 {
            bail!("a face template nonce of {} bytes", nonce.len());
        }
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad(student_id, model),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "a face template does not open with {} (another board's key, or damaged)",
                    self.path.display()
                )
            })?;
        Ok(plain
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_open_only_for_their_student_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/face.key");
        let k = FaceKey::open_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let emb = vec![0.25f32, -0.5, 1.0];
        let (n, c) = k.seal("S01", "m", &emb).unwrap();
        assert!(
            !c.windows(4).any(|w| w == 0.25f32.to_le_bytes()),
            "not in the clear"
        );
        assert_eq!(k.open("S01", "m", &n, &c).unwrap(), emb);
        assert!(k.open("S02", "m", &n, &c).is_err(), "bound to the student");
        // The same file opens again; another key does not open the template.
        let again = FaceKey::open_or_create(&path).unwrap();
        assert_eq!(again.open("S01", "m", &n, &c).unwrap(), emb);
        let other = FaceKey::open_or_create(&dir.path().join("other.key")).unwrap();
        assert!(
            other
                .open("S01", "m", &n, &c)
                .unwrap_err()
                .to_string()
                .contains("does not open")
        );
        // A key others can read is refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = FaceKey::open_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }
}
