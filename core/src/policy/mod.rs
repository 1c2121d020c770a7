//! Scheduling policies (being written).
