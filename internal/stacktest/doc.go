// Package stacktest owns the tests of the deployment assets under deploy/
// and of scripts/local-stack.sh: the Prometheus rules (promtool check and
// unit tests), the Grafana dashboard (every query parses and names only
// metrics the worker exports), the compose file, the profiles and the
// Dockerfile, and the local stack run end to end and checked through
// Prometheus's HTTP API; and the secret-leak proof (secrets_test.go): a
// full run with credentials everywhere whose every log line, HTTP answer,
// dead letter and enqueue output is scanned for the secrets, raw or
// encoded. It has no non-test code and does not deploy anything.
package stacktest
