// Package cost is the session cost model of spec §7.1: what each request,
// error and byte costs, how cost decays, how sessions of one subnet share
// a group budget that outlives them, and the standing (sleep, allowed
// concurrency, disconnect) a session's cost earns it.
package cost
