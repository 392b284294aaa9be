package idlepace

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeProc lays out a /proc with this process's threads and their slack.
func fakeProc(t *testing.T, threads ...string) string {
	t.Helper()
	root := t.TempDir()
	pid := fmt.Sprint(os.Getpid())
	for _, tid := range append([]string{pid}, threads...) {
		if err := os.MkdirAll(filepath.Join(root, pid, "task", tid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, tid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, tid, "timerslack_ns"), []byte("50000\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	return root
}

func slackOf(t *testing.T, root, tid string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, tid, "timerslack_ns"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

func TestCalmAndBusySlackReachEveryThread(t *testing.T) {
	root := fakeProc(t, "101", "102")
	noReport := func(m string) { t.Fatalf("reported %q", m) }
	calm, busy := slackFromEnv(func(string) string { return "10ms" }, noReport)
	if calm != 10*time.Millisecond || busy != 50*time.Microsecond {
		t.Fatalf("got calm %v, busy %v; want 10ms, 50µs", calm, busy)
	}
	s := Settings{CalmSlack: calm, BusySlack: busy}
	if err := s.apply(false); err != nil {
		t.Fatal(err)
	}
	for _, tid := range []string{fmt.Sprint(os.Getpid()), "101", "102"} {
		if got := slackOf(t, root, tid); got != "10000000" {
			t.Fatalf("calm: thread %s's slack %s, want 10000000", tid, got)
		}
	}
	if err := s.apply(true); err != nil {
		t.Fatal(err)
	}
	if got := slackOf(t, root, "102"); got != "50000" {
		t.Fatalf("busy: slack %s, want 50000", got)
	}
}

func TestAThreadThatEndedIsSkipped(t *testing.T) {
	root := fakeProc(t, "101")
	// Listed but gone, as a thread that ends between the listing and the write.
	if err := os.MkdirAll(filepath.Join(root, fmt.Sprint(os.Getpid()), "task", "103"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := setThreadsSlack(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := slackOf(t, root, "101"); got != "1000000" {
		t.Fatalf("slack %s, want 1000000", got)
	}
}

func TestBadSlackIsReportedAndChangesNothing(t *testing.T) {
	root := fakeProc(t, "101")
	for _, value := range []string{"10", "fast", "0s", "-1ms", "2s"} {
		var reported []string
		calm, busy := slackFromEnv(func(string) string { return value }, func(m string) { reported = append(reported, m) })
		if calm != 0 || busy != 0 || len(reported) != 1 || !strings.Contains(reported[0], SlackEnv) {
			t.Fatalf("%q: got %v/%v, reported %q; want nothing paced and one line", value, calm, busy, reported)
		}
		if got := slackOf(t, root, "101"); got != "50000" {
			t.Fatalf("%q changed the slack to %s", value, got)
		}
	}
	for _, value := range []string{"", "off"} {
		if calm, _ := slackFromEnv(func(string) string { return value }, func(m string) { t.Fatalf("reported %q", m) }); calm != 0 {
			t.Fatalf("%q: paced", value)
		}
	}
}

func TestSlackThatCannotBeSetIsReported(t *testing.T) {
	root := fakeProc(t, "101")
	// A read-only directory in place of the thread's file: the write fails.
	slack := filepath.Join(root, "101", "timerslack_ns")
	if err := os.Remove(slack); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(slack, 0o555); err != nil {
		t.Fatal(err)
	}
	var reported []string
	calm, _ := slackFromEnv(func(string) string { return "5ms" }, func(m string) { reported = append(reported, m) })
	if calm != 0 || len(reported) != 1 || !strings.Contains(reported[0], "thread 101") {
		t.Fatalf("got calm %v, reported %q; want nothing paced and one line naming the thread", calm, reported)
	}
}

// The real kernel: this process's threads take the calm slack and give it
// back (needs CAP_SYS_NICE for threads other than the caller's).
func TestRealThreadsSlack(t *testing.T) {
	calm, busy := slackFromEnv(func(string) string { return "7ms" }, func(m string) { t.Skip(m) })
	s := Settings{CalmSlack: calm, BusySlack: busy}
	defer func() { _ = s.apply(true) }()
	if err := s.apply(false); err != nil {
		t.Fatal(err)
	}
	threads, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, thread := range threads {
		raw, err := os.ReadFile("/proc/" + thread.Name() + "/timerslack_ns")
		if err != nil {
			continue // ended meanwhile
		}
		if got := strings.TrimSpace(string(raw)); got != "7000000" {
			t.Fatalf("thread %s's slack %s, want 7000000", thread.Name(), got)
		}
	}
	if err := s.apply(true); err != nil {
		t.Fatal(err)
	}
}
