//! World coordinates: pixel <-> sky for the projections and frames astronomers have.
