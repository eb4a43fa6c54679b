package app

import "runtime"

// Goroutines that a daemon keeps blocked in cgo calls or system calls: the
// interchange loop (zmq_poll), the journal writer (SQLite) and a provider
// command (wait4).
const daemonBlockers = 3

// reserveProcs raises GOMAXPROCS to at least blockers+2. A goroutine in a
// cgo or system call keeps its P; once every P is held that way, a
// goroutine made runnable (the journal writer handed a batch, a slot whose
// task ended) waits for the runtime's monitor to take a P back, 20 µs to
// 10 ms later, and a small machine (2 cores: GOMAXPROCS 2) runs out of Ps
// all the time. Spare Ps cost nothing while idle.
func reserveProcs(blockers int) {
	if n := blockers + 2; runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
}
