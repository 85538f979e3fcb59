//! Integration tests of tutela-detect: golden cases, eval thresholds, streaming, rule packs.
