package prooftest

// Rand is the random source of a workload: *math/rand/v2.Rand and
// *SplitMix satisfy it.
type Rand interface {
	IntN(n int) int
	Int64N(n int64) int64
	Shuffle(n int, swap func(i, j int))
}

// SplitMix is a small deterministic generator (splitmix64). Its draws are
// the value modulo n, so a seed gives the same workload on every Go
// version.
type SplitMix struct{ s uint64 }

// NewSplitMix returns a generator seeded with seed.
func NewSplitMix(seed uint64) *SplitMix { return &SplitMix{s: seed} }

// Uint64 returns the next value.
func (r *SplitMix) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// IntN returns a value in [0, n); n must be positive.
func (r *SplitMix) IntN(n int) int { return int(r.Uint64() % uint64(n)) }

// Int64N returns a value in [0, n); n must be positive.
func (r *SplitMix) Int64N(n int64) int64 { return int64(r.Uint64() % uint64(n)) }

// Shuffle permutes n elements with swap (Fisher–Yates).
func (r *SplitMix) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.IntN(i+1))
	}
}
