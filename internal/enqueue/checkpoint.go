package enqueue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// checkpoint is the resume state of one input, kept in <input>.enqueue-state.
type checkpoint struct {
	// Input is the input path, for people reading the file.
	Input string `json:"input"`
	// Identity is the input's content hash; a checkpoint only applies to
	// the same content.
	Identity string `json:"identity"`
	// Line is the highest line L such that every record on lines ≤ L is
	// acknowledged by the stream (or was skipped as invalid).
	Line int `json:"line"`
	// Done is true when the whole input was published.
	Done    bool      `json:"done"`
	Updated time.Time `json:"updated"`
}

// loadCheckpoint reads a checkpoint; a missing file is (nil, nil).
func loadCheckpoint(path string) (*checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil || c.Identity == "" || c.Line < 0 {
		return nil, fmt.Errorf("checkpoint %s is unreadable (%v): remove it to start over (the stream deduplicates a re-run within its 30 min window)", path, err)
	}
	return &c, nil
}

// save writes the checkpoint atomically: a temporary file in the same
// directory, then a rename over the old one.
func (c *checkpoint) save(path string) error {
	c.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
