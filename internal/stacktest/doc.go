// Package stacktest owns the tests of the deployment assets under deploy/
// and of scripts/local-stack.sh: the Prometheus rules (promtool check and
// unit tests), the Grafana dashboard (every query parses and names only
// metrics the worker exports), the compose file, the profiles and the
// Dockerfile, and the local stack run end to end and checked through
// Prometheus's HTTP API. It has no non-test code and does not deploy
// anything.
package stacktest
