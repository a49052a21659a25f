package bench

import (
	"math/rand/v2"
	"strconv"

	"github.com/friendsync/friendsync/event"
)

// Account distributions of a backlog.
const (
	distZipf    = "zipf"
	distUniform = "uniform"
)

// zipfS is the Zipf exponent of skewed workloads: with 1000 accounts the
// busiest holds about a fifth of the events and most hold one or two.
const zipfS = 1.1

// accountID is account a's id at vendor v (within the vendor's id rules).
func accountID(v event.Vendor, a int) string {
	switch v {
	case event.Volc:
		return strconv.Itoa(10_000_000 + a)
	case event.Zego:
		return "z" + strconv.Itoa(a)
	default:
		return "u" + strconv.Itoa(a)
	}
}

// friendID is the n-th friend id at vendor v.
func friendID(v event.Vendor, n int) string {
	switch v {
	case event.Volc:
		return strconv.Itoa(20_000_000 + n)
	case event.Zego:
		return "zf" + strconv.Itoa(n)
	default:
		return "f" + strconv.Itoa(n)
	}
}

// picker draws account indexes in [0, accounts).
func picker(rng *rand.Rand, dist string, accounts int) func() int {
	if dist == distZipf && accounts > 1 {
		z := rand.NewZipf(rng, zipfS, 1, uint64(accounts-1))
		// Zipf ranks 0 as the busiest; scatter the ranks over the ids so the
		// busy accounts do not all hash to neighbouring partitions.
		perm := rng.Perm(accounts)
		return func() int { return perm[z.Uint64()] }
	}
	return func() int { return rng.IntN(accounts) }
}

// backlog returns n remark updates for vendor v's app, accounts drawn from
// dist, every event to a friend of its own (so no two merge and every
// event is one item), and the number of events per account.
func backlog(v event.Vendor, dist string, n, accounts int, seed uint64) ([]event.Event, map[string]int) {
	rng := rand.New(rand.NewPCG(seed, uint64(len(v))))
	pick := picker(rng, dist, accounts)
	evs := make([]event.Event, n)
	per := map[string]int{}
	for i := range evs {
		from := accountID(v, pick())
		per[from]++
		evs[i] = event.Event{App: appOf[v], From: from, To: friendID(v, i), Remark: event.Ptr("r" + strconv.Itoa(i))}
	}
	return evs, per
}

// optimum is the fewest calls that can carry per's events: Σ ceil(n/cap).
func optimum(per map[string]int, cap int) int {
	calls := 0
	for _, n := range per {
		calls += (n + cap - 1) / cap
	}
	return calls
}

// shuffle mixes events of several backlogs into one publish order.
func shuffle(seed uint64, evs []event.Event) {
	rng := rand.New(rand.NewPCG(seed, 99))
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
}
