// containerd's runc shim as its own small static binary: one runs per pod,
// so it must not carry containerd's weight.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/k3r-io/k3r/bootstrap/starttrim"

	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
)

func main() {
	// A shim lives as long as its pod; it inherits k3r's delay through
	// containerd's environment (docs/configuration.md).
	starttrim.Later(func(message string) { log.L.Info(message) })
	shim.RunShim(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))
}
