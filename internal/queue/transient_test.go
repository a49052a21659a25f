package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestTransient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("queue: ensure: stream X: %w", err) }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no responders (fresh cluster)", wrap(nats.ErrNoResponders), true},
		{"request timeout", wrap(nats.ErrTimeout), true},
		{"setup deadline", wrap(context.DeadlineExceeded), true},
		{"reconnecting", wrap(nats.ErrConnectionReconnecting), true},
		{"temporarily unavailable (meta election)", wrap(&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}), true},
		{"request timeout answer", wrap(&jetstream.APIError{Code: 408, Description: "timeout"}), true},
		{"jetstream not enabled (or not up yet)", wrap(jetstream.ErrJetStreamNotEnabled), true},
		{"stream config conflict", errors.New("queue: ensure: stream X exists with conflicting settings: retention"), false},
		{"bad request", wrap(&jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}), false},
		{"cancelled", wrap(context.Canceled), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %t, want %t", c.name, c.err, got, c.want)
		}
	}
}
