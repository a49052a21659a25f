package prooftest

import (
	"strconv"

	"github.com/friendsync/friendsync/event"
	"github.com/friendsync/friendsync/internal/vendorsim"
)

// App is one test app: its name in the profiles, its vendor, and its id at
// the simulator (the SDKAppID, Volcengine AppID or ZEGO AppID).
type App struct {
	Name   string
	Vendor event.Vendor
	SimID  string
	// MostlyOneFriend gives four in five of the app's accounts a single
	// friend (the others one or two, like every other app's).
	MostlyOneFriend bool
}

// Apps are a deployment's test apps.
type Apps []App

// Find returns the app named name (the zero App when there is none).
func (as Apps) Find(name string) App {
	for _, a := range as {
		if a.Name == name {
			return a
		}
	}
	return App{}
}

// Friend reads k from the simulator.
func (as Apps) Friend(sim *vendorsim.Sim, k FriendKey) (vendorsim.Friend, bool) {
	a := as.Find(k.App)
	return sim.Friend(a.Vendor, a.SimID, k.From, k.To)
}

// AttrKeys are the attribute keys a workload writes for vendor v (for
// Tencent, the custom keys "configured in the console").
func AttrKeys(v event.Vendor) []string {
	switch v {
	case event.Tencent:
		return []string{"Level", "City"}
	case event.Volc:
		return []string{"level", "city"}
	default:
		return []string{"k0", "k1", "k2"}
	}
}

// AccountIDs returns the id of account a of a vendor v app and its
// friends' ids, within each vendor's id rules (Volcengine ids are
// integers).
func AccountIDs(v event.Vendor, a int) (string, func(int) string) {
	switch v {
	case event.Volc:
		return strconv.Itoa(10_000_000 + a), func(f int) string { return strconv.Itoa(20_000_000 + a*4 + f) }
	case event.Zego:
		return "z" + strconv.Itoa(a), func(f int) string { return "zf" + strconv.Itoa(a) + "_" + strconv.Itoa(f) }
	default:
		return "u" + strconv.Itoa(a), func(f int) string { return "f" + strconv.Itoa(a) + "_" + strconv.Itoa(f) }
	}
}
