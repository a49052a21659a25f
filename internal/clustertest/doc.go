// Package clustertest owns the scale-out proofs: friendsync on a real NATS
// cluster. Three in-process nats-servers (JetStream, routes, one store
// directory each) carry the partition streams, their consumers and the
// lease bucket at three replicas; three in-process workers, each connected to a different
// node, share Redis and the vendor simulator; one node is stopped mid-run.
// The tests check the invariants from the outside: the simulator holds the
// newest value of every field, nothing is dead-lettered, no account had two
// writes in flight, no budget's 1-second window went over its limit, and
// the vendor calls of a partition never came from two workers at once.
//
// It has no non-test code and starts nothing outside the test process
// except what testenv starts (the machine's Redis is used through it).
package clustertest
