package queue

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Transient reports whether err is a NATS or JetStream failure that may go
// away on its own: no responders or "JetStream not enabled" (the client
// maps a JetStream API without responders to the latter, which is also
// what a fresh cluster answers before JetStream is up), a request timeout,
// a connection that is reconnecting, or an API answer 503 / 408
// ("JetStream system temporarily unavailable" while a meta leader is
// elected). A caller may retry these (and should say that JetStream may
// be disabled); anything else (conflicting settings, permissions, a bad
// request) is a configuration problem to report.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrServerShutdown), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code == 503 || api.Code == 408
	}
	return false
}
