// Upstream CoreDNS, as its own main builds it, plus k3r's start-up trim:
// the image k3r packs for its CoreDNS add-on (scripts/coredns-image).
package main

import (
	"github.com/coredns/coredns/coremain"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/k3r-io/k3r/bootstrap/starttrim"

	_ "github.com/coredns/coredns/core/plugin"
)

func main() {
	// The add-on's manifest passes k3r's delay (docs/configuration.md).
	starttrim.Later(func(message string) { clog.Info(message) })
	coremain.Run()
}
