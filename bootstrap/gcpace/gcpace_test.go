package gcpace

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestBusyAllocationSlowsTheCollectorUntilCalm(t *testing.T) {
	p := Pacer{Idle: 25, Busy: 100}
	start := time.Unix(1000, 0)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		allocated uint64
		second    int
		percent   int
		changed   bool
	}{
		{1 << 20, 1, 25, false},                 // idle: well under the busy rate
		{BusyBytesPerSecond, 2, 100, true},      // a burst starts
		{64 << 20, 3, 100, false},               // still busy: no change
		{0, 4, 100, false},                      // a pause within the burst
		{0, 12, 100, false},                     // calm for 9 s: not yet
		{0, 13, 25, true},                       // calm for 10 s: idle again
		{0, 14, 25, false},                      // stays idle
		{BusyBytesPerSecond - 1, 15, 25, false}, // just under the rate
	}
	for _, s := range steps {
		percent, changed := p.Observe(s.allocated, time.Second, at(s.second))
		if percent != s.percent || changed != s.changed {
			t.Fatalf("at %d s with %d bytes: got (%d, %v), want (%d, %v)",
				s.second, s.allocated, percent, changed, s.percent, s.changed)
		}
	}
}

func TestRateIsPerSecond(t *testing.T) {
	p := Pacer{Idle: 25, Busy: 100}
	// Twice the busy rate's bytes over two seconds is exactly the rate.
	if percent, _ := p.Observe(2*BusyBytesPerSecond, 2*time.Second, time.Unix(1, 0)); percent != 100 {
		t.Fatalf("got %d, want the busy percentage", percent)
	}
	q := Pacer{Idle: 25, Busy: 100}
	if percent, _ := q.Observe(2*BusyBytesPerSecond-2, 2*time.Second, time.Unix(1, 0)); percent != 25 {
		t.Fatalf("got %d, want the idle percentage", percent)
	}
}

func TestBadValuesAreReportedAndChangeNothing(t *testing.T) {
	before := debug.SetGCPercent(40)
	defer debug.SetGCPercent(before)
	for _, value := range []string{"fast", "0", "-5"} {
		t.Setenv(Env, value)
		var reported []string
		Start(func(m string) { reported = append(reported, m) })
		if len(reported) != 1 {
			t.Fatalf("%s=%q: reported %q, want one line", Env, value, reported)
		}
		if now := debug.SetGCPercent(40); now != 40 {
			t.Fatalf("%s=%q changed the GC percentage to %d", Env, value, now)
		}
	}
	for _, value := range []string{"", "off", "30"} {
		t.Setenv(Env, value)
		Start(func(m string) { t.Fatalf("%s=%q reported %q", Env, value, m) })
		if now := debug.SetGCPercent(40); now != 40 {
			t.Fatalf("%s=%q changed the GC percentage to %d", Env, value, now)
		}
	}
}
