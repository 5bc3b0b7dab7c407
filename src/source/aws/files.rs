//! The AWS files a run reads — the shared config and credentials files, the web-identity and
//! container authorization token files — read here, bounded (see `bounded_read`), inside the
//! fetch deadline. The config and credentials contents are handed to the SDK, so it never opens
//! them itself; the token files are checked the same way before the SDK's providers read them.
//! A file a setting names that is a FIFO, a device or too large is a 78 naming the setting.

use crate::bounded_read::{self, ReadError};
use crate::error::Error;
use crate::source::options::{AwsOptions, FileSetting};

/// A shared config or credentials file: far beyond any real one, small enough to hold.
pub const PROFILE_CAP: usize = 1 << 20;
/// A token file (a JWT, an EKS Pod Identity token): a few KiB in practice.
pub const TOKEN_CAP: usize = 64 << 10;

/// The profile files' contents, `None` where the file does not exist.
#[derive(Default)]
pub struct AwsFiles {
    pub config: Option<String>,
    pub credentials: Option<String>,
}

fn refused(s: &FileSetting, why: &dyn std::fmt::Display) -> Error {
    Error::Config(format!(
        "{} names '{}', which cannot be read: {why}; point it at a readable file or unset it",
        s.var,
        s.path.display()
    ))
}

async fn read(s: &FileSetting, cap: usize) -> Result<Option<String>, Error> {
    match bounded_read::read(s.path.clone(), cap).await {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(_) => Err(refused(s, &"it is not UTF-8 text")),
        },
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(refused(s, &e))
        }
        Err(e) => Err(refused(s, &e)),
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
        // Only checked: the SDK's provider reads it again when it needs it.
        read(s, TOKEN_CAP).await?;
    }
    Ok(files)
}
