// Package config owns the worker's and enqueue's configuration: loading
// it from flags and FRIENDSYNC_* environment variables (flags win),
// reading the vendor profiles file, validating everything once at start,
// and printing the effective configuration with every secret masked.
//
// It does not build clients or connections: package worker does that from
// a validated Config. Loading is a pure function of the arguments, the
// getenv function and the files they name, so tests need no environment.
package config
