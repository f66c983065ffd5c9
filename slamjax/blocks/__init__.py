"""The blocks of one Gibbs sweep; each is a pure function of one chain's arrays."""
