package starttrim

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseMappingTakesOnlyTheExecutablesReadOnlyMappings(t *testing.T) {
	dev := makedev(0xfd, 0x01)
	cases := []struct {
		line string
		want bool
	}{
		{"00400000-027e7000 r--p 00000000 fd:01 1234 /bin/k3r-kube", true},
		{"027e7000-06d39000 r-xp 023e7000 fd:01 1234 /bin/k3r-kube (deleted)", true},
		{"0bf9f000-0c0f2000 rw-p 0bb9f000 fd:01 1234 /bin/k3r-kube", false},
		{"00400000-027e7000 r--p 00000000 fd:02 1234 /other/device", false},
		{"00400000-027e7000 r--p 00000000 fd:01 4321 /other/file", false},
		{"7ffec481f000-7ffec4840000 rw-p 00000000 00:00 0 [stack]", false},
		{"garbage", false},
	}
	for _, c := range cases {
		_, got := parseMapping(c.line, dev, 1234)
		if got != c.want {
			t.Errorf("parseMapping(%q) = %v, want %v", c.line, got, c.want)
		}
	}
	r, _ := parseMapping(cases[0].line, dev, 1234)
	if r.start != 0x400000 || r.end != 0x27e7000 {
		t.Errorf("range %x-%x", r.start, r.end)
	}
}

// A read-only mapping with anonymous pages was written (a cgo binary's
// RELRO: its relocated GOT); unmapping it would restore the file's
// unrelocated contents, so it is left alone.
func TestWrittenMappingsAreLeftAlone(t *testing.T) {
	smaps := `00400000-027e7000 r--p 00000000 fd:01 1234 /bin/k3r-kube
Rss:               2652 kB
Anonymous:            0 kB
027e7000-06d3a000 r-xp 023e7000 fd:01 1234 /bin/k3r-kube
Anonymous:            0 kB
0bfa0000-0bfa1000 r--p 0bb9f000 fd:01 1234 /bin/k3r-kube
Anonymous:            4 kB
0bfa1000-0c0f4000 rw-p 0bba0000 fd:01 1234 /bin/k3r-kube
Anonymous:          368 kB
0c0f4000-0c100000 r--p 00000000 fd:01 9999 /other
Anonymous:            0 kB
`
	ranges, err := unwrittenMappings(strings.NewReader(smaps), makedev(0xfd, 0x01), 1234)
	if err != nil {
		t.Fatal(err)
	}
	want := []addressRange{{0x400000, 0x27e7000}, {0x27e7000, 0x6d3a000}}
	if len(ranges) != len(want) || ranges[0] != want[0] || ranges[1] != want[1] {
		t.Fatalf("got %x, want %x", ranges, want)
	}
}

// An executable with no read-only mapping left to trim is an error, as in
// the Rust trim (NoMapping), not a trim of 0 MiB.
func TestNoMappingOfTheExecutableIsAnError(t *testing.T) {
	smaps := `0bfa1000-0c0f4000 rw-p 0bba0000 fd:01 1234 /bin/k3r-kube
Anonymous:          368 kB
0c0f4000-0c100000 r--p 00000000 fd:01 9999 /other
Anonymous:            0 kB
`
	ranges, err := unwrittenMappings(strings.NewReader(smaps), makedev(0xfd, 0x01), 1234)
	if err == nil || !strings.Contains(err.Error(), "no read-only mapping") {
		t.Fatalf("got %x and error %v, want the no-mapping error", ranges, err)
	}
}

// The device number in /proc/self/maps (major:minor in hex) and the one
// stat reports are the same device.
func TestTheExecutableIsFoundInItsOwnMaps(t *testing.T) {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	ranges, err := ownReadOnlyMappings(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) < 2 {
		t.Fatalf("want the text and read-only data mappings at least, got %v", ranges)
	}
}

// The test binary's own mappings: after Now, fewer of its pages are
// resident, and it goes on running.
func TestNowUnmapsTheExecutablesPages(t *testing.T) {
	before := executableResidentKiB(t)
	trimmed, err := Now()
	if err != nil {
		t.Fatal(err)
	}
	if trimmed.Eviction != nil {
		t.Fatalf("the unmapped cached pages were not evicted: %v", trimmed.Eviction)
	}
	after := executableResidentKiB(t)
	if trimmed.Unmapped == 0 || after >= before {
		t.Fatalf("unmapped %d bytes; the executable's resident pages went from %d to %d KiB", trimmed.Unmapped, before, after)
	}
	t.Logf("unmapped %d KiB; resident %d -> %d KiB", trimmed.Unmapped>>10, before, after)
}

func executableResidentKiB(t *testing.T) uint64 {
	var total uint64
	for _, rss := range executableMappingsField(t, "Rss:") {
		kib, _ := strconv.ParseUint(strings.Fields(rss)[0], 10, 64)
		total += kib
	}
	return total
}

// executableMappingsField is the value of one smaps field (such as "Rss:")
// for each read-only mapping of the test's own executable.
func executableMappingsField(t *testing.T, key string) []string {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	ours := false
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			_, ours = parseMapping(line, st.Dev, st.Ino)
			continue
		}
		if value, found := strings.CutPrefix(line, key); ours && found {
			values = append(values, strings.TrimSpace(value))
		}
	}
	return values
}

// After a trim, a page the process needs again is read alone: smaps shows
// MADV_RANDOM as each read-only mapping's "rr" flag.
func TestTrimmedMappingsReadOnePageAtATime(t *testing.T) {
	if _, err := Now(); err != nil {
		t.Fatal(err)
	}
	flags := executableMappingsField(t, "VmFlags:")
	if len(flags) == 0 {
		t.Fatal("no read-only mapping of the executable")
	}
	for _, f := range flags {
		if !slices.Contains(strings.Fields(f), "rr") {
			t.Errorf("VmFlags %q lack rr (MADV_RANDOM)", f)
		}
	}
}

// Processes with the same delay that started seconds apart trim in the
// same instant.
func TestPassesFallOnTheSameWallClockInstants(t *testing.T) {
	at := func(seconds int64, nanos int64) time.Time { return time.Unix(seconds, nanos) }
	if got := untilNextPass(at(1_800_000_000, 0)); got != PassEvery {
		t.Errorf("on a boundary: %v", got)
	}
	if got := untilNextPass(at(1_800_000_029, 999_999_000)); got != time.Microsecond {
		t.Errorf("just before one: %v", got)
	}
	first, second := at(1_800_000_061, 0), at(1_800_000_064, 0)
	if a, b := first.Add(untilNextPass(first)), second.Add(untilNextPass(second)); !a.Equal(b) {
		t.Errorf("3 s apart: %v and %v", a, b)
	}
}

// A value that is not a duration is named in one line and nothing is
// trimmed.
func TestABadDelayIsReportedAndNothingIsTrimmed(t *testing.T) {
	t.Setenv(Env, "soon")
	var messages []string
	Later(func(message string) { messages = append(messages, message) })
	if len(messages) != 1 || !strings.Contains(messages[0], Env+`="soon" is not a duration`) {
		t.Fatalf("messages %q", messages)
	}
}
