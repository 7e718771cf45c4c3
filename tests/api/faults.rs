//! Process and transaction faults caused for real: failing triggers, contention, lost updates, kill -9 and SIGTERM of the binary.
