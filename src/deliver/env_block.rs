//! The environment block: every `NAME=value\0` string back to back in one zeroizing buffer
//! sized once, plus the pointer array execve takes. Building it consumes the merged environment,
//! so at execve the only copy of a secret value in this process is the one being handed over.

use crate::deliver::environ::Merged;
use nix::libc;
use std::os::unix::ffi::OsStrExt;
use zeroize::Zeroizing;

/// `NAME=value\0` strings, back to back in one buffer sized once, plus the pointer array.
pub struct EnvBlock {
    buf: Zeroizing<Vec<u8>>,
    offsets: Vec<usize>,
    /// PATH was injected (came from a secret), so messages must not show it.
    path_injected: bool,
}

impl EnvBlock {
    /// Builds the block and consumes `merged`, so every injected `SecretText` is wiped as soon
    /// as its bytes are in the block.
    pub fn build(merged: Merged) -> EnvBlock {
        let size: usize = merged
            .inherited
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .chain(
                merged
                    .injected
                    .iter()
                    .map(|i| i.var.name.len() + i.var.value.len() + 2),
            )
            .sum();
        let path_injected = merged.injected.iter().any(|i| i.var.name == "PATH");
        let mut buf = Zeroizing::new(Vec::with_capacity(size));
        let mut offsets = Vec::with_capacity(merged.inherited.len() + merged.injected.len());
        let mut push = |k: &[u8], v: &[u8]| {
            offsets.push(buf.len());
            buf.extend_from_slice(k);
            buf.push(b'=');
            buf.extend_from_slice(v);
            buf.push(0);
        };
        for (k, v) in &merged.inherited {
            push(k.as_bytes(), v.as_bytes());
        }
        for inj in merged.injected {
            push(inj.var.name.as_bytes(), inj.var.value.expose().as_bytes());
        }
        debug_assert_eq!(buf.len(), size, "env block was sized wrong");
        EnvBlock {
            buf,
            offsets,
            path_injected,
        }
    }

    /// PATH as error messages may show it: `None` when a secret set it.
    pub(crate) fn shown_path(&self) -> Option<Option<&[u8]>> {
        (!self.path_injected).then(|| self.value_of(b"PATH"))
    }

    pub(crate) fn value_of(&self, name: &[u8]) -> Option<&[u8]> {
        // Later entries win, as the injected ones come last and override.
        self.offsets.iter().rev().find_map(|&o| {
            let entry = &self.buf[o..];
            let end = entry.iter().position(|&b| b == 0)?;
            let entry = &entry[..end];
            entry
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    }

    pub(crate) fn pointers(&self) -> Vec<*const libc::c_char> {
        let base = self.buf.as_ptr();
        let mut p: Vec<*const libc::c_char> = self
            .offsets
            .iter()
            // SAFETY: every offset is inside `buf`, which outlives the pointer array.
            .map(|&o| unsafe { base.add(o) } as *const libc::c_char)
            .collect();
        p.push(std::ptr::null());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::environ::Injected;
    use crate::map::{Origin, Var};
    use crate::secret::SecretText;

    #[test]
    fn block_layout_and_lookup() {
        let merged = Merged {
            inherited: vec![("PATH".into(), "/usr/bin".into())],
            injected: vec![Injected {
                var: Var {
                    name: "PATH".into(),
                    value: SecretText::copy_of("/opt/bin"),
                    origin: Origin {
                        via: crate::map::Via::Secret,
                        spec: "s".into(),
                        secret_id: "s".into(),
                        key: None,
                        version_id: None,
                        stage: String::new(),
                        explicit: true,
                    },
                },
                overrides: false,
            }],
        };
        let block = EnvBlock::build(merged);
        assert_eq!(&block.buf[..], b"PATH=/usr/bin\0PATH=/opt/bin\0");
        assert_eq!(block.value_of(b"PATH"), Some(&b"/opt/bin"[..]));
        assert_eq!(block.value_of(b"PAT"), None);
        assert_eq!(block.pointers().len(), 3);
    }
}
