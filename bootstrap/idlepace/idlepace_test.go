package idlepace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestBusyUntilCalmForCalmAfter(t *testing.T) {
	start := time.Unix(1000, 0)
	p := Pacer{busy: true, lastBusy: start}
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	quarter := time.Duration(BusyCPU * float64(time.Second))
	steps := []struct {
		allocated uint64
		cpu       time.Duration
		second    int
		busy      bool
		changed   bool
	}{
		{0, 0, 9, true, false},                                  // start-up counts as busy
		{1 << 20, 10 * time.Millisecond, 10, false, true},       // calm for 10 s
		{BusyBytesPerSecond, 0, 11, true, true},                 // allocating fast
		{64 << 20, 0, 12, true, false},                          // still busy: no change
		{0, 0, 13, true, false},                                 // a pause within the burst
		{0, 0, 21, true, false},                                 // calm for 9 s: not yet
		{0, 0, 22, false, true},                                 // calm for 10 s
		{BusyBytesPerSecond - 1, quarter - 1, 23, false, false}, // just under both
		{0, quarter, 24, true, true},                            // using a quarter of a core
		{0, 0, 34, false, true},                                 // calm again
	}
	for _, s := range steps {
		busy, changed := p.Observe(s.allocated, s.cpu, time.Second, at(s.second))
		if busy != s.busy || changed != s.changed {
			t.Fatalf("at %d s with %d bytes and %v CPU: got (%v, %v), want (%v, %v)",
				s.second, s.allocated, s.cpu, busy, changed, s.busy, s.changed)
		}
	}
}

func TestRatesArePerSecond(t *testing.T) {
	calm := func() *Pacer { return &Pacer{lastBusy: time.Unix(0, 0)} }
	// Twice the busy rate over two seconds is exactly the rate.
	if busy, _ := calm().Observe(2*BusyBytesPerSecond, 0, 2*time.Second, time.Unix(1, 0)); !busy {
		t.Fatal("twice the busy allocation over two seconds: not busy")
	}
	if busy, _ := calm().Observe(2*BusyBytesPerSecond-2, 0, 2*time.Second, time.Unix(1, 0)); busy {
		t.Fatal("under the busy allocation rate: busy")
	}
	if busy, _ := calm().Observe(0, 400*time.Millisecond, 2*time.Second, time.Unix(1, 0)); busy {
		t.Fatal("a fifth of a core: busy")
	}
}

func TestSettingsFromEnv(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	procs := runtime.GOMAXPROCS(0)
	env := func(vars map[string]string) func(string) string {
		return func(name string) string { return vars[name] }
	}
	noReport := func(m string) { t.Fatalf("reported %q", m) }
	got := FromEnv(env(map[string]string{GCEnv: "100", ProcsEnv: "1"}), noReport)
	want := Settings{CalmGCPercent: 40, BusyGCPercent: 100}
	if procs > 1 {
		want.CalmProcs, want.BusyProcs = 1, procs
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, vars := range []map[string]string{
		{},
		{GCEnv: "off", ProcsEnv: "off"},
		{GCEnv: "30"},                      // not slower than GOGC
		{ProcsEnv: "1", "GOMAXPROCS": "2"}, // the user's GOMAXPROCS holds
		{ProcsEnv: "1000"},                 // not fewer than the runtime's
	} {
		if got := FromEnv(env(vars), noReport); got != (Settings{}) {
			t.Fatalf("%v: got %+v, want nothing paced", vars, got)
		}
	}
}

func TestBadValuesAreReportedAndChangeNothing(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	procs := runtime.GOMAXPROCS(0)
	for _, name := range []string{GCEnv, ProcsEnv} {
		for _, value := range []string{"fast", "0", "-5"} {
			t.Setenv(name, value)
			var reported []string
			Start(func(m string) { reported = append(reported, m) })
			if len(reported) != 1 {
				t.Fatalf("%s=%q: reported %q, want one line", name, value, reported)
			}
			if now := debug.SetGCPercent(40); now != 40 {
				t.Fatalf("%s=%q changed the GC percentage to %d", name, value, now)
			}
			if now := runtime.GOMAXPROCS(0); now != procs {
				t.Fatalf("%s=%q changed GOMAXPROCS to %d", name, value, now)
			}
		}
		t.Setenv(name, "")
	}
}

func TestApplySwitchesBothSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	s := Settings{CalmGCPercent: 25, BusyGCPercent: 100, CalmProcs: 1, BusyProcs: 3}
	s.apply(false)
	if gc, procs := debug.SetGCPercent(25), runtime.GOMAXPROCS(0); gc != 25 || procs != 1 {
		t.Fatalf("calm: GOGC %d, GOMAXPROCS %d; want 25, 1", gc, procs)
	}
	s.apply(true)
	if gc, procs := debug.SetGCPercent(100), runtime.GOMAXPROCS(0); gc != 100 || procs != 3 {
		t.Fatalf("busy: GOGC %d, GOMAXPROCS %d; want 100, 3", gc, procs)
	}
}
