//! The AWS files a run reads — the shared config and credentials files, the web-identity and
//! container authorization token files — read here, bounded (see `bounded_read`), inside the
//! fetch deadline. The config and credentials contents are parsed here once per run (see
//! [`AwsFiles::profiles`]) and every reader — region, `ca_bundle`, the named-profile check, the
//! `credential_process` chain — uses that one set; the SDK's own profile providers get the same
//! contents, so none of them opens the files. The container token is kept as read here; the
//! web-identity token is checked here before the SDK's provider reads it (it rotates).
//! A file a setting names that is a FIFO, a device or too large is a 78 naming the setting.

use crate::bounded_read::{self, ReadError};
use crate::error::Error;
use crate::source::options::{AwsOptions, FileSetting};
use aws_config::profile::{ProfileFileLoadError, ProfileSet};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use zeroize::Zeroizing;

/// A shared config or credentials file: far beyond any real one, small enough to hold.
pub const PROFILE_CAP: usize = 1 << 20;
/// A token file (a JWT, an EKS Pod Identity token): a few KiB in practice.
pub const TOKEN_CAP: usize = 64 << 10;

/// The container authorization token file's setting.
const CONTAINER_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";

/// The profile files' contents, `None` where the file does not exist, and the container
/// authorization token file's bytes when that file is set and exists.
#[derive(Default)]
pub struct AwsFiles {
    pub config: Option<String>,
    pub credentials: Option<String>,
    pub container_token: Option<Zeroizing<Vec<u8>>>,
}

impl AwsFiles {
    /// The contents as the SDK's providers take them: they parse these, never the files.
    pub fn profile_files(&self) -> EnvConfigFiles {
        EnvConfigFiles::builder()
            .with_contents(
                EnvConfigFileKind::Config,
                self.config.clone().unwrap_or_default(),
            )
            .with_contents(
                EnvConfigFileKind::Credentials,
                self.credentials.clone().unwrap_or_default(),
            )
            .build()
    }

    /// The profiles, parsed once per run with `selected` as the selected profile. The SDK's
    /// only public parser takes its file-system and environment shims; both are empty here, so
    /// it reads nothing but these contents (no file, no `HOME`, no `AWS_PROFILE`).
    pub async fn profiles(&self, selected: &str) -> Result<ProfileSet, ProfileFileLoadError> {
        use aws_types::os_shim_internal::{Env, Fs};
        aws_config::profile::load(
            &Fs::from_slice(&[]),
            &Env::from_slice(&[]),
            &self.profile_files(),
            Some(std::borrow::Cow::Owned(selected.to_string())),
        )
        .await
    }
}

fn refused(s: &FileSetting, why: &dyn std::fmt::Display) -> Error {
    Error::Config(format!(
        "{} names '{}', which cannot be read: {why}; point it at a readable file or unset it",
        s.var,
        s.path.display()
    ))
}

async fn read_bytes(s: &FileSetting, cap: usize) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    bounded_read::read(s.path.clone(), cap)
        .await
        .map_err(|e: ReadError| refused(s, &e))
}

async fn read(s: &FileSetting, cap: usize) -> Result<Option<String>, Error> {
    match read_bytes(s, cap).await? {
        None => Ok(None),
        Some(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(_) => Err(refused(s, &"it is not UTF-8 text")),
        },
    }
}

/// Reads and checks every AWS file the settings name. Must run inside the deadline.
pub async fn load(aws: &AwsOptions) -> Result<AwsFiles, Error> {
    let f = &aws.files;
    let mut files = AwsFiles::default();
    if let Some(s) = &f.config {
        files.config = read(s, PROFILE_CAP).await?;
    }
    if let Some(s) = &f.credentials {
        files.credentials = read(s, PROFILE_CAP).await?;
    }
    for s in &f.tokens {
        let bytes = read_bytes(s, TOKEN_CAP).await?;
        if bytes
            .as_ref()
            .is_some_and(|b| std::str::from_utf8(b).is_err())
        {
            return Err(refused(s, &"it is not UTF-8 text"));
        }
        if s.var == CONTAINER_TOKEN {
            files.container_token = bytes;
        }
        // The web-identity token is only checked: the SDK's provider reads it when it needs it.
    }
    Ok(files)
}

/// The profiles `config` holds, parsed as a run parses them, with `selected` selected.
#[cfg(test)]
pub fn parsed(config: &str, selected: &str) -> ProfileSet {
    let files = AwsFiles {
        config: Some(config.to_string()),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(files.profiles(selected)).unwrap()
}
