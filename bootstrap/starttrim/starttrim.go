// Package starttrim lets a long-running Go process of k3r's multicalls
// give back the pages of its own binary that only its start touched.
//
// A Go program runs every linked package's init at start, and those are
// spread over the whole binary; on kernels that map a file's large folios
// whole at a page fault (Linux 6.18 on ext4: up to 2 MiB per fault), that
// leaves most of a 200 MB multicall mapped in every process although its
// working set is a fraction of it (docs/benchmarks.md). Unmapping the
// binary's read-only mappings after start, and evicting the cached folios
// no process maps any longer, lets the working set fault back one page at
// a time and the rest be reclaimed. When and whether is k3r's decision,
// given in the environment.
package starttrim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Env names the delay after which a process trims (a Go duration); unset,
// empty or "off" means never.
const Env = "K3R_TRIM_START_PAGES_AFTER"

// PassEvery aligns the trim to the wall clock: processes of one binary
// (kube-apiserver's and kubelet's, the shims) whose delays end within the
// same half minute trim in the same instant. Only then can the page cache
// drop the large folios they shared: one that any of them still maps
// stays cached, and its next fault maps all of it. A second pass would
// catch the pairs a boundary splits, but it costs as much as the first
// (every page in use is read back from disk), so there is one.
const PassEvery = 30 * time.Second

// Later trims after the delay Env gives, in the background, at the next
// multiple of PassEvery; report is called with a one-line outcome (or an
// error about Env or the trim).
func Later(report func(message string)) {
	value := os.Getenv(Env)
	if value == "" || value == "off" {
		return
	}
	delay, err := time.ParseDuration(value)
	if err != nil || delay < 0 {
		report(fmt.Sprintf("%s=%q is not a duration; the start-up pages stay mapped", Env, value))
		return
	}
	go func() {
		time.Sleep(delay)
		time.Sleep(untilNextPass(time.Now()))
		before := residentKiB()
		trimmed, err := Now()
		if err != nil {
			report(fmt.Sprintf("trimming the start-up pages: %v", err))
			return
		}
		line := fmt.Sprintf("unmapped the binary's %d MiB of read-only mappings: resident %d -> %d MiB",
			trimmed.Unmapped>>20, before>>10, residentKiB()>>10)
		if trimmed.Eviction != nil {
			line += fmt.Sprintf("; its cached pages stay: %v", trimmed.Eviction)
		}
		report(line)
	}()
}

// untilNextPass is the wait from now to the next multiple of PassEvery.
func untilNextPass(now time.Time) time.Duration {
	return now.Truncate(PassEvery).Add(PassEvery).Sub(now)
}

// Trimmed is what one trim did: the bytes unmapped, and the error, if
// any, of evicting the cached pages no process maps any longer (which
// leaves the unmapping done, so it is reported apart).
type Trimmed struct {
	Unmapped uint64
	Eviction error
}

// Now unmaps every read-only, never written mapping of the process's own
// executable, then evicts the executable's unmapped cached pages. Text
// and read-only data are never written, so MADV_DONTNEED loses nothing:
// what the process still uses faults back in, from the page cache or,
// once dropped (see dropUnmappedCache), from disk one page at a time.
func Now() (Trimmed, error) {
	// Opened once: found by its device and inode, then evicted through it.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return Trimmed{}, err
	}
	defer exe.Close()
	ranges, err := ownReadOnlyMappings(exe)
	if err != nil {
		return Trimmed{}, err
	}
	var trimmed Trimmed
	for _, r := range ranges {
		// MADV_RANDOM: a page the process needs again is read alone, not
		// with a read-ahead window around it.
		for _, advice := range []uintptr{syscall.MADV_DONTNEED, syscall.MADV_RANDOM} {
			_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(r.start), uintptr(r.end-r.start), advice)
			if errno != 0 {
				return trimmed, fmt.Errorf("madvise %x-%x: %w", r.start, r.end, errno)
			}
		}
		trimmed.Unmapped += r.end - r.start
	}
	trimmed.Eviction = dropUnmappedCache(exe)
	return trimmed, nil
}

// dropUnmappedCache evicts the executable's cached pages that no process
// maps any longer. A page fault maps the whole cached folio it lands in,
// and a freshly written or read-ahead binary is cached in folios of up to
// 2 MiB: without this, every page the process faults back maps its 2 MiB
// neighbourhood again. Pages other processes still map stay cached.
func dropUnmappedCache(exe *os.File) error {
	const fadvDontNeed = 4 // POSIX_FADV_DONTNEED
	_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, exe.Fd(), 0, 0, fadvDontNeed, 0, 0)
	if errno != 0 {
		return fmt.Errorf("fadvise DONTNEED %s: %w", exe.Name(), errno)
	}
	return nil
}

type addressRange struct{ start, end uint64 }

// ownReadOnlyMappings are the mappings of /proc/self/exe's inode without
// write permission and without anonymous pages (found by device and
// inode, so a binary replaced on disk since the start is still found).
// A mapping with anonymous pages was written once: a cgo binary's RELRO
// (its GOT, relocated by the dynamic loader, then made read-only) —
// unmapping those pages would bring back the unrelocated file contents.
func ownReadOnlyMappings(exe *os.File) ([]addressRange, error) {
	var identity syscall.Stat_t
	if err := syscall.Fstat(int(exe.Fd()), &identity); err != nil {
		return nil, fmt.Errorf("stat %s: %w", exe.Name(), err)
	}
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer smaps.Close()
	return unwrittenMappings(smaps, identity.Dev, identity.Ino)
}

// unwrittenMappings reads smaps: the read-only mappings of the file
// (dev, ino) whose Anonymous count is 0.
func unwrittenMappings(smaps io.Reader, dev, ino uint64) ([]addressRange, error) {
	var ranges []addressRange
	var current addressRange
	candidate := false
	scanner := bufio.NewScanner(smaps)
	for scanner.Scan() {
		line := scanner.Text()
		if r, ok := parseMapping(line, dev, ino); ok {
			current, candidate = r, true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Anonymous:"); ok && candidate {
			if kib, ok := parseKiB(rest); ok && kib == 0 {
				ranges = append(ranges, current)
			}
			candidate = false
			continue
		}
		if isMappingHeader(line) {
			candidate = false
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/smaps: %w", err)
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("no read-only mapping of the executable in /proc/self/smaps")
	}
	return ranges, nil
}

// parseKiB reads an smaps value such as "   4 kB".
func parseKiB(value string) (uint64, bool) {
	kib, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
	return kib, err == nil
}

// isMappingHeader tells a mapping's first line in smaps ("start-end perms
// ...") from its "Key: value" lines.
func isMappingHeader(line string) bool {
	first, _, _ := strings.Cut(line, " ")
	return strings.Contains(first, "-") && !strings.HasSuffix(first, ":")
}

// parseMapping reads one line of /proc/<pid>/maps:
// "start-end perms offset major:minor inode path".
func parseMapping(line string, dev, ino uint64) (addressRange, bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 || strings.ContainsRune(fields[1], 'w') {
		return addressRange{}, false
	}
	inode, err := strconv.ParseUint(fields[4], 10, 64)
	if err != nil || inode != ino {
		return addressRange{}, false
	}
	major, minor, ok := strings.Cut(fields[3], ":")
	if !ok {
		return addressRange{}, false
	}
	maj, err1 := strconv.ParseUint(major, 16, 32)
	min, err2 := strconv.ParseUint(minor, 16, 32)
	if err1 != nil || err2 != nil || makedev(maj, min) != dev {
		return addressRange{}, false
	}
	startHex, endHex, ok := strings.Cut(fields[0], "-")
	if !ok {
		return addressRange{}, false
	}
	start, err1 := strconv.ParseUint(startHex, 16, 64)
	end, err2 := strconv.ParseUint(endHex, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return addressRange{}, false
	}
	return addressRange{start, end}, true
}

// makedev is glibc's encoding of a device number, as stat reports it.
func makedev(major, minor uint64) uint64 {
	return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor &^ 0xff) << 12) | ((major &^ 0xfff) << 32)
}

// residentKiB is the process's resident set (smaps_rollup's Rss), or 0.
func residentKiB() uint64 {
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Rss:"); ok {
			kib, _ := parseKiB(rest)
			return kib
		}
	}
	return 0
}
