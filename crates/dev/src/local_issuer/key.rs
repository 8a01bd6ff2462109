//! The local issuer's RSA key: generated once (2048 bits, aws-lc-rs), stored as PKCS#8 with mode 0600 so
//! the server and a separate `uc-access-dev token` process sign and verify with the same key.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::LocalIssuerError;

const KEY_FILE: &str = "signing-key.pk8";

/// Reads the key in `dir`, creating it first when absent. Returns PKCS#8 DER.
pub(super) fn load_or_create(dir: &Path) -> Result<Vec<u8>, LocalIssuerError> {
    let path = dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(der) => return validated(der, &path),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(LocalIssuerError::io(&path, e)),
    }
    create_private_dir(dir)?;
    let der = KeyPair::generate(KeySize::Rsa2048)
        .and_then(|pair| pair.as_der())
        .map_err(|_| LocalIssuerError::Key("could not generate an RSA key".into()))?
        .as_ref()
        .to_vec();
    // Write aside, then link into place: a concurrent process either wins the link or reads the winner's
    // complete file, never a half-written one.
    let temp = dir.join(format!("{KEY_FILE}.{}.tmp", uuid::Uuid::new_v4()));
    write_private(&temp, &der)?;
    let linked = fs::hard_link(&temp, &path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(der),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let der = fs::read(&path).map_err(|e| LocalIssuerError::io(&path, e))?;
            validated(der, &path)
        }
        Err(e) => Err(LocalIssuerError::io(&path, e)),
    }
}

fn validated(der: Vec<u8>, path: &Path) -> Result<Vec<u8>, LocalIssuerError> {
    KeyPair::from_pkcs8(&der).map_err(|e| {
        LocalIssuerError::Key(format!(
            "{} is not a PKCS#8 RSA key ({e}); delete it to generate a new one",
            path.display()
        ))
    })?;
    Ok(der)
}

/// PKCS#8 DER as PEM, the form `jsonwebtoken` reads RSA private keys from.
pub(super) fn pkcs8_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn create_private_dir(dir: &Path) -> Result<(), LocalIssuerError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| LocalIssuerError::io(dir, e))
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> Result<(), LocalIssuerError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| LocalIssuerError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| LocalIssuerError::io(path, e))
}
