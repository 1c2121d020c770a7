//! Public GPU-cluster trace formats for EAS-Sim (being written).
