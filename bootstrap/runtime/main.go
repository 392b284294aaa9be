// The k3r runtime multicall: containerd and ctr in one binary, chosen by
// the name it runs under (argv[0]), as k3s links them into its own. Only
// dispatch lives here; everything k3r decides about them is in Rust.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/cmd/containerd/command"
	"github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/containerd/log"
	"github.com/k3r-io/k3r/bootstrap/idlepace"
	"github.com/k3r-io/k3r/bootstrap/starttrim"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	ctx := context.Background()
	name := filepath.Base(os.Args[0])
	var err error
	switch name {
	case "ctr":
		err = app.New().Run(ctx, os.Args)
	case "containerd":
		// k3r sets the delay (docs/configuration.md).
		starttrim.Later(func(message string) { log.L.Info(message) })
		// Never a timer slack: a process inherits its parent's, and
		// containerd's children are the shims, whose are the containers.
		_ = os.Unsetenv(idlepace.SlackEnv)
		idlepace.Start(func(message string) { log.L.Warn(message) })
		err = command.App().Run(ctx, os.Args)
	default:
		fmt.Fprintf(os.Stderr, "%s: run me as containerd or ctr\n", name)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
