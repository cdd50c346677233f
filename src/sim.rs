//! Simulated DSA-110-like drift-scan snapshots and their truth catalogue.
