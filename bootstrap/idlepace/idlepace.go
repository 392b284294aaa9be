// Package idlepace lets a long-running Go process of k3r's multicalls run
// lighter while it is calm and at full speed while it is busy.
//
// A node's Go processes are idle nearly all of their lives and busy in
// bursts (start-up, a `kubectl apply` of many objects, a rollout). Three
// runtime settings trade idle cost against burst speed, and the
// kernel or the environment fixes each for a process's whole life:
//
//   - GOGC: a low percentage keeps an idle heap small, but a burst then
//     spends a fifth more of its CPU collecting (docs/benchmarks.md). With
//     K3R_GOGC_BUSY the process collects at that percentage while busy and
//     at its GOGC while calm.
//   - GOMAXPROCS: with several Ps, every timer or network wake-up of an
//     idle process also wakes an idle thread to look for more work, which
//     finds none: most of an idle control plane's CPU, profiled. With
//     K3R_GOMAXPROCS_IDLE the process runs on that many Ps while calm and
//     on the runtime's default while busy.
//   - Timer slack: see SlackEnv. With K3R_TIMER_SLACK_IDLE every thread of
//     the process may wake that much late for a timer while calm, and
//     keeps the kernel's slack while busy.
//
// Busy means allocating faster than BusyBytesPerSecond or using more than
// BusyCPU of a core; calm, CalmAfter without either. A process starts
// busy. When and whether is k3r's decision, given in the environment.
package idlepace

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"
)

const (
	// GCEnv names the GC percentage for busy periods; unset, empty or
	// "off" means the process keeps GOGC throughout.
	GCEnv = "K3R_GOGC_BUSY"
	// ProcsEnv names the number of Ps for calm periods; unset, empty or
	// "off" means the process keeps the runtime's GOMAXPROCS throughout,
	// as it does when GOMAXPROCS itself is set.
	ProcsEnv = "K3R_GOMAXPROCS_IDLE"
)

const (
	// BusyBytesPerSecond is the allocation rate from which a process
	// counts as busy: an idle control plane allocates under 1 MiB/s, and
	// creating ConfigMaps one by one with kubectl about 20-25 MiB/s.
	BusyBytesPerSecond = 8 << 20
	// BusyCPU is the share of one core from which a process counts as
	// busy: an idle control plane uses about 4 %, kubelet about 1.5 %.
	BusyCPU = 0.25
	// CalmAfter is how long a process stays below both before its calm
	// settings return, so that the pauses between a burst's requests do
	// not flip them back and forth.
	CalmAfter = 10 * time.Second
	// Interval is how often the allocation rate and CPU use are sampled.
	Interval = time.Second
)

const allocatedBytes = "/gc/heap/allocs:bytes"

// Settings are the runtime settings a process paces; a zero pair is not
// paced.
type Settings struct {
	CalmGCPercent, BusyGCPercent int
	CalmProcs, BusyProcs         int
	CalmSlack, BusySlack         time.Duration
}

// Start paces the process in the background when the environment asks for
// it; report is called with one line per problem with a value, which then
// leaves that setting as the runtime has it.
func Start(report func(message string)) {
	settings := FromEnv(os.Getenv, report)
	if settings == (Settings{}) {
		return
	}
	// The process starts busy; slackFromEnv has just set the busy slack.
	_ = settings.apply(true)
	go run(settings, report)
}

// FromEnv reads what to pace from getenv, against the runtime's settings
// at start (GOGC, GOMAXPROCS).
func FromEnv(getenv func(string) string, report func(message string)) Settings {
	var s Settings
	if busy, ok := positive(getenv, GCEnv, report, "the collector keeps GOGC"); ok {
		// SetGCPercent returns the previous setting: GOGC as the runtime read it.
		calm := debug.SetGCPercent(busy)
		debug.SetGCPercent(calm)
		// Unless the collector is off or the busy pace would not be slower.
		if calm >= 0 && busy > calm {
			s.CalmGCPercent, s.BusyGCPercent = calm, busy
		}
	}
	if calm, ok := positive(getenv, ProcsEnv, report, "GOMAXPROCS stays the runtime's"); ok {
		// A GOMAXPROCS of the user's holds throughout.
		if busy := runtime.GOMAXPROCS(0); getenv("GOMAXPROCS") == "" && calm < busy {
			s.CalmProcs, s.BusyProcs = calm, busy
		}
	}
	s.CalmSlack, s.BusySlack = slackFromEnv(getenv, report)
	return s
}

func positive(getenv func(string) string, name string, report func(string), kept string) (int, bool) {
	value := getenv(name)
	if value == "" || value == "off" {
		return 0, false
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		report(fmt.Sprintf("%s=%q is not a positive number; %s", name, value, kept))
		return 0, false
	}
	return n, true
}

// apply switches the settings to busy's or calm's; an error setting the
// threads' slack is returned and leaves the rest applied.
func (s Settings) apply(busy bool) error {
	if s.BusyGCPercent > 0 {
		if busy {
			debug.SetGCPercent(s.BusyGCPercent)
		} else {
			debug.SetGCPercent(s.CalmGCPercent)
			// The heap grew at the busy pace and the runtime returns the
			// surplus to the OS only slowly: one collection now brings the
			// calm footprint straight back (measured: 28 MiB of PSS still
			// held two minutes after start-up without it).
			debug.FreeOSMemory()
		}
	}
	if s.BusyProcs > 0 {
		if busy {
			runtime.GOMAXPROCS(s.BusyProcs)
		} else {
			runtime.GOMAXPROCS(s.CalmProcs)
		}
	}
	if s.CalmSlack > 0 {
		if busy {
			return setThreadsSlack(s.BusySlack)
		}
		return setThreadsSlack(s.CalmSlack)
	}
	return nil
}

func run(settings Settings, report func(message string)) {
	sample := []metrics.Sample{{Name: allocatedBytes}}
	metrics.Read(sample)
	lastAllocated, lastCPU := sample[0].Value.Uint64(), cpuTime()
	pacer := Pacer{busy: true, lastBusy: time.Now()}
	ticker := time.NewTicker(Interval)
	defer ticker.Stop()
	for now := range ticker.C {
		metrics.Read(sample)
		allocated, cpu := sample[0].Value.Uint64(), cpuTime()
		if busy, changed := pacer.Observe(allocated-lastAllocated, cpu-lastCPU, Interval, now); changed {
			if err := settings.apply(busy); err != nil {
				report(fmt.Sprintf("%s: %v; timers keep the kernel's slack from now on", SlackEnv, err))
				settings.CalmSlack = 0
				// Best effort: the threads it reached go back to the start's slack.
				_ = setThreadsSlack(settings.BusySlack)
			}
		}
		lastAllocated, lastCPU = allocated, cpu
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// Pacer decides from a process's allocation and CPU use whether it is busy.
type Pacer struct {
	busy     bool
	lastBusy time.Time
}

// Observe takes the bytes allocated and the CPU time used during the last
// period and returns whether the process counts as busy, and whether that
// changed.
func (p *Pacer) Observe(allocated uint64, cpu, period time.Duration, now time.Time) (busy, changed bool) {
	if period > 0 && (float64(allocated)/period.Seconds() >= BusyBytesPerSecond ||
		cpu.Seconds()/period.Seconds() >= BusyCPU) {
		p.lastBusy = now
		changed = !p.busy
		p.busy = true
		return true, changed
	}
	if p.busy && now.Sub(p.lastBusy) >= CalmAfter {
		p.busy = false
		return false, true
	}
	return p.busy, false
}
