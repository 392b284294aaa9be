// Package starttrim lets a long-running Go process of k3r's multicalls
// give back the pages of its own binary that only its start touched.
//
// A Go program runs every linked package's init at start, and those are
// spread over the whole binary; on kernels that map a file's large folios
// whole at a page fault (Linux 6.18 on ext4 maps 1 MiB per fault), that
// leaves most of a 200 MB multicall mapped in every process although its
// working set is about half of it (docs/benchmarks.md). Unmapping the
// binary's read-only mappings once, after start, lets the working set
// fault back in from the page cache and the rest be reclaimed as unmapped
// cache. When and whether is k3r's decision, given in the environment.
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

// Later trims once after the delay Env gives, in the background; report
// is called with a one-line outcome (or an error about Env or the trim).
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
		before := residentKiB()
		unmapped, err := Now()
		if err != nil {
			report(fmt.Sprintf("the start-up pages stay mapped: %v", err))
			return
		}
		report(fmt.Sprintf("unmapped the binary's %d MiB of read-only mappings: resident %d -> %d MiB",
			unmapped>>20, before>>10, residentKiB()>>10))
	}()
}

// Now unmaps every read-only, never written mapping of the process's own
// executable and
// returns their total size. The pages stay in the page cache: what the
// process still uses faults back in without I/O. Text and read-only data
// are never written, so MADV_DONTNEED loses nothing.
func Now() (uint64, error) {
	ranges, err := ownReadOnlyMappings()
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, r := range ranges {
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(r.start), uintptr(r.end-r.start), syscall.MADV_DONTNEED)
		if errno != 0 {
			return total, fmt.Errorf("madvise %x-%x: %w", r.start, r.end, errno)
		}
		total += r.end - r.start
	}
	return total, nil
}

type addressRange struct{ start, end uint64 }

// ownReadOnlyMappings are the mappings of /proc/self/exe's inode without
// write permission and without anonymous pages (found by device and
// inode, so a binary replaced on disk since the start is still found).
// A mapping with anonymous pages was written once: a cgo binary's RELRO
// (its GOT, relocated by the dynamic loader, then made read-only) —
// unmapping those pages would bring back the unrelocated file contents.
func ownReadOnlyMappings() ([]addressRange, error) {
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer smaps.Close()
	return unwrittenMappings(smaps, exe.Dev, exe.Ino)
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
