package versions

import (
	"context"
	"fmt"
	"sync"

	"github.com/friendsync/friendsync/internal/jobs"
)

// Memory is the in-process version store of the embedded single-process
// mode (and of tests): the same Load/Raise/Forget, no TTL, no bound. It is
// the store of record there, so Forget keeps everything. It is safe for
// concurrent use.
type Memory struct {
	mu sync.Mutex
	m  map[jobs.Key]map[string]jobs.Version
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{m: make(map[jobs.Key]map[string]jobs.Version)}
}

// Load returns the last-applied version of each field; zero when never
// applied.
func (s *Memory) Load(_ context.Context, key jobs.Key, fields []string) ([]jobs.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := make([]jobs.Version, len(fields))
	if p := s.m[key]; p != nil {
		for i, f := range fields {
			vs[i] = p[f]
		}
	}
	return vs, nil
}

// Raise sets each field to max(stored, vs[i]); zero versions are skipped.
func (s *Memory) Raise(_ context.Context, key jobs.Key, fields []string, vs []jobs.Version) error {
	fs, nvs, _, err := raiseArgs(fields, vs)
	if err != nil {
		return fmt.Errorf("versions: raise (app %s): %w", key.App, err)
	}
	if len(fs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.m[key]
	if p == nil {
		p = make(map[string]jobs.Version, len(fs))
		s.m[key] = p
	}
	for i, f := range fs {
		if cur := p[f]; cur.Less(nvs[i]) {
			p[f] = nvs[i]
		}
	}
	return nil
}

// Forget does nothing: Memory is the only copy of the versions.
func (s *Memory) Forget(func(jobs.Key) bool) {}
