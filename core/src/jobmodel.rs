//! Job performance model (being written).
