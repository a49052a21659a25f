// Package jobs owns the worker-side vocabulary that every stage of the data
// path shares: the Envelope (a decoded event plus its queue metadata), the
// Version that decides "newest wins", and the Outcome that ends every event.
//
// It imports only the public event contract. It does not talk to NATS,
// Redis or any vendor: queue turns Outcomes into acks, deliver produces
// them.
package jobs
