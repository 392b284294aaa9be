// Package gcpace lets a long-running Go process of k3r's multicalls
// collect garbage at one pace when idle and a slower one when busy.
//
// GOGC trades memory for CPU once for a process's whole life. The control
// plane's process is idle nearly all of its life, where a low GOGC keeps
// its heap small, and busy in bursts (a `kubectl apply` of many objects, a
// rollout), where the same GOGC spends a fifth of its CPU collecting
// (docs/benchmarks.md). While the process allocates faster than
// BusyBytesPerSecond it collects at the busy percentage that Env gives,
// and once it has been calm for CalmAfter it returns to the percentage it
// started with (GOGC). When and whether is k3r's decision, given in the
// environment.
package gcpace

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// Env names the GC percentage for busy periods; unset, empty or "off"
// means the process keeps GOGC throughout.
const Env = "K3R_GOGC_BUSY"

const (
	// BusyBytesPerSecond is the allocation rate from which a process
	// counts as busy: an idle control plane allocates under 1 MiB/s, and
	// creating ConfigMaps one by one with kubectl about 20-25 MiB/s.
	BusyBytesPerSecond = 8 << 20
	// CalmAfter is how long the allocation rate stays below
	// BusyBytesPerSecond before the idle percentage returns, so that the
	// pauses between a burst's requests do not flip the pace back and forth.
	CalmAfter = 10 * time.Second
	// Interval is how often the allocation rate is sampled.
	Interval = time.Second
)

const allocatedBytes = "/gc/heap/allocs:bytes"

// Start paces the collector in the background when Env asks for it;
// report is called with a one-line problem with Env's value.
func Start(report func(message string)) {
	value := os.Getenv(Env)
	if value == "" || value == "off" {
		return
	}
	busy, err := strconv.Atoi(value)
	if err != nil || busy <= 0 {
		report(fmt.Sprintf("%s=%q is not a positive percentage; the collector keeps GOGC", Env, value))
		return
	}
	// SetGCPercent returns the previous setting: GOGC as the runtime read it.
	idle := debug.SetGCPercent(busy)
	debug.SetGCPercent(idle)
	if idle < 0 || busy <= idle {
		// The collector is off, or the busy pace would not be slower.
		return
	}
	go run(Pacer{Idle: idle, Busy: busy})
}

func run(pacer Pacer) {
	sample := []metrics.Sample{{Name: allocatedBytes}}
	metrics.Read(sample)
	last := sample[0].Value.Uint64()
	ticker := time.NewTicker(Interval)
	defer ticker.Stop()
	for now := range ticker.C {
		metrics.Read(sample)
		total := sample[0].Value.Uint64()
		if percent, changed := pacer.Observe(total-last, Interval, now); changed {
			debug.SetGCPercent(percent)
			if percent == pacer.Idle {
				// The heap grew at the busy pace and the runtime returns
				// the surplus to the OS only slowly: one collection now
				// brings the idle footprint straight back (measured: 28 MiB
				// of PSS still held two minutes after start-up without it).
				debug.FreeOSMemory()
			}
		}
		last = total
	}
}

// Pacer decides the GC percentage from the allocation rate.
type Pacer struct {
	Idle, Busy int
	busy       bool
	lastBusy   time.Time
}

// Observe takes the bytes allocated during the last period and returns
// the percentage to collect at, and whether that changed.
func (p *Pacer) Observe(allocated uint64, period time.Duration, now time.Time) (int, bool) {
	if period > 0 && float64(allocated)/period.Seconds() >= BusyBytesPerSecond {
		p.lastBusy = now
		if !p.busy {
			p.busy = true
			return p.Busy, true
		}
		return p.Busy, false
	}
	if p.busy && now.Sub(p.lastBusy) >= CalmAfter {
		p.busy = false
		return p.Idle, true
	}
	if p.busy {
		return p.Busy, false
	}
	return p.Idle, false
}
