//go:build race

package worker_test

// raceBuild: the race detector slows the in-process workers several times,
// so TestProofMixedWorkload defaults to fewer accounts (-proof.accounts
// overrides).
const raceBuild = true
