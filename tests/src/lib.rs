//! pmem-tests: integration and differential tests.
