// Package testenv is test-only: it connects tests to the real NATS
// (JetStream) and Redis on 127.0.0.1, failing (never skipping) with the
// command that starts a missing service, starts in-process nats-servers and
// throwaway redis-servers for fault tests, and hands out unique names so
// that packages can run in parallel against the same servers.
//
// Non-test code must not import it.
package testenv
