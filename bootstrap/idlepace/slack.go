package idlepace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SlackEnv names the timer slack for calm periods (a Go duration, e.g.
// "10ms"); unset, empty or "off" leaves every thread's slack as the kernel
// has it.
//
// An idle Go process sleeps until its next timer, and upstream's
// components keep hundreds of them (client-go's workqueue metrics twice a
// second per queue, the watch cache's bookmark timers once a second per
// resource): each fires alone, and each wake-up costs context switches at
// about 50 µs apiece on a VM. With a slack, the kernel may end a sleep that
// much later, and the runtime then fires every timer that came due
// meanwhile in one wake-up. Events (a request, a watch event) still wake a
// thread at once: only timers are late, by at most the slack.
const SlackEnv = "K3R_TIMER_SLACK_IDLE"

// MaxSlack bounds the calm slack: a timer more than this late would be
// noticed (leader-election renewals, probes' periods, the node's lease).
const MaxSlack = time.Second

// procRoot is where the kernel lists the process's threads and takes each
// thread's slack; a variable for the tests.
var procRoot = "/proc"

// slackFromEnv reads the calm slack, and the slack the process started
// with, which it keeps while busy. It checks that the threads' slack can be
// set (CAP_SYS_NICE: k3r's components run as root).
func slackFromEnv(getenv func(string) string, report func(string)) (calm, busy time.Duration) {
	value := getenv(SlackEnv)
	if value == "" || value == "off" {
		return 0, 0
	}
	calm, err := time.ParseDuration(value)
	if err != nil || calm <= 0 || calm > MaxSlack {
		report(fmt.Sprintf("%s=%q is not a duration between 1ns and %v; timers keep the kernel's slack", SlackEnv, value, MaxSlack))
		return 0, 0
	}
	busy, err = processSlack()
	if err == nil {
		// Writing the current value back changes nothing but proves the
		// permission.
		err = setThreadsSlack(busy)
	}
	if err != nil {
		report(fmt.Sprintf("%s: %v; timers keep the kernel's slack", SlackEnv, err))
		return 0, 0
	}
	return calm, busy
}

// processSlack is the main thread's slack, which the other threads
// inherited: the kernel's default unless the parent set one.
func processSlack() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("%s/%d/timerslack_ns", procRoot, os.Getpid()))
	if err != nil {
		return 0, fmt.Errorf("reading the timer slack: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || ns <= 0 {
		return 0, fmt.Errorf("reading the timer slack: %q is not a positive number", strings.TrimSpace(string(raw)))
	}
	return time.Duration(ns), nil
}

// setThreadsSlack sets every thread's timer slack. A thread the runtime
// starts meanwhile inherits its creator's slack, so the threads are listed
// again until a pass finds no new one.
func setThreadsSlack(slack time.Duration) error {
	value := []byte(strconv.FormatInt(slack.Nanoseconds(), 10))
	done := map[string]bool{}
	for pass := 0; pass < 3; pass++ {
		threads, err := os.ReadDir(fmt.Sprintf("%s/%d/task", procRoot, os.Getpid()))
		if err != nil {
			return fmt.Errorf("listing the process's threads: %w", err)
		}
		fresh := 0
		for _, thread := range threads {
			tid := thread.Name()
			if done[tid] {
				continue
			}
			done[tid], fresh = true, fresh+1
			// /proc/<tid> is the thread itself; its task/ entry has no
			// timerslack_ns.
			err := os.WriteFile(fmt.Sprintf("%s/%s/timerslack_ns", procRoot, tid), value, 0)
			ended := errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
			if err != nil && !ended { // a thread may end meanwhile
				return fmt.Errorf("setting thread %s's timer slack: %w", tid, err)
			}
		}
		if fresh == 0 {
			break
		}
	}
	return nil
}
