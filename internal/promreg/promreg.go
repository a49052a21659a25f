// Package promreg owns how friendsync's packages register their metrics:
// idempotently, and without ever stopping the worker. It does not define
// metrics; each package keeps its own in metrics.go.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c itself,
// or the equal collector already registered (so two components built on
// one registry share their series). On any other error c stays
// unregistered: metrics never stop the worker.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	return c
}
