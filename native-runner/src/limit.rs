//! `--memory-limit SIZE`: the memory budget of the commands that run
//! scenarios, campaigns and soaks (pmem-core's [`Budget`] owns the limits
//! and their defaults; this is only the option).

use pmem_core::budget::{Budget, DEFAULT_NATIVE_LIMIT};
use pmem_core::size::{human_size, parse_size};

/// The `--memory-limit` option, flattened into a command's options.
#[derive(clap::Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Memory the command may use for what its input asks for (event log,
    /// page versions, crash images, input text), with QEMU's K/M/G/T
    /// suffixes; input that would pass it is refused before it runs, a run
    /// that reaches it stops with one line.
    #[arg(long = "memory-limit", value_name = "SIZE", value_parser = parse_limit, help = format!(
        "Memory the command may use for what its input asks for (event log, crash images, input text), \
         with K/M/G/T suffixes; input that would pass it is refused before it runs (default {})",
        human_size(DEFAULT_NATIVE_LIMIT)
    ))]
    pub memory_limit: Option<Budget>,
}

impl MemoryLimit {
    /// The budget: `--memory-limit`, else [`DEFAULT_NATIVE_LIMIT`].
    pub fn budget(&self) -> Budget {
        self.memory_limit.unwrap_or_default()
    }
}

/// Parses `--memory-limit` (a size of at least pmem-core's minimum).
pub fn parse_limit(text: &str) -> Result<Budget, String> {
    let bytes = parse_size(text).map_err(|e| e.to_string())?;
    Budget::new(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_suffixes_are_read_and_tiny_limits_refused() {
        assert_eq!(parse_limit("256M").unwrap().limit(), 256 << 20);
        assert!(parse_limit("1M").unwrap_err().contains("below the smallest accepted"));
        assert!(parse_limit("lots").is_err());
        assert_eq!(MemoryLimit::default().budget().limit(), DEFAULT_NATIVE_LIMIT);
    }
}
