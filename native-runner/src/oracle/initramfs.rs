//! The guest's initramfs, written by hand as an uncompressed `cpio -H newc`
//! archive (the format the kernel unpacks into its root file system).
//!
//! A newc entry is the magic `070701`, thirteen 8-digit hex fields (inode,
//! mode, uid, gid, nlink, mtime, file size, dev major/minor, rdev
//! major/minor, name size with its NUL, checksum 0), the name and a NUL,
//! padded to 4 bytes, then the data, padded to 4 bytes. The archive ends
//! with an entry named `TRAILER!!!`.

/// A newc archive being built in memory.
#[derive(Debug, Default)]
pub struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
}

const DIR: u32 = 0o040755;
const FILE: u32 = 0o100644;
const EXEC: u32 = 0o100755;

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Cpio { bytes: Vec::new(), next_inode: 1 }
    }

    /// Adds a directory (its parents must have been added first).
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, DIR, &[])
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, FILE, data)
    }

    /// Adds an executable file.
    pub fn executable(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, EXEC, data)
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let nlink = if mode == DIR { 2 } else { 1 };
        let fields = [self.next_inode, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.next_inode += 1;
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    /// The finished archive (with its trailer).
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_the_trailer_ends_the_archive() {
        let mut c = Cpio::new();
        c.dir("lib").file("lib/a", b"abc").executable("init", b"\x7fELF");
        let bytes = c.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        // Header of "lib": 110 bytes, name "lib\0" → 114, padded to 116.
        assert_eq!(&bytes[116..122], b"070701");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
        // The file size field of lib/a (7th field) is 3.
        let a = text.find("lib/a").unwrap();
        let header = &text[a - 110..a];
        assert_eq!(&header[6 + 6 * 8..6 + 7 * 8], "00000003");
    }
}
