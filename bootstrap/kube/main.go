// Command k3r-kube links the upstream Kubernetes components into one
// multicall binary: the first argument (or the program name) selects which
// component runs. `k3r-kube together` runs several of them in one process
// (see together.go).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/k3r-io/k3r/bootstrap/idlepace"
	"github.com/k3r-io/k3r/bootstrap/starttrim"
	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/klog/v2"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	_ "time/tzdata"
)

var commands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	// As upstream cmd/kubelet: the command installs its own signal handling.
	"kubelet":    func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-proxy": proxy.NewProxyCommand,
	"kubectl":    kubectlcmd.NewDefaultKubectlCommand,
}

func main() {
	// k3r sets the delay for the components it starts (docs/configuration.md).
	starttrim.Later(func(message string) { klog.Info(message) })
	// k3r asks for it in the components it starts (docs/configuration.md).
	idlepace.Start(func(message string) { klog.Warning(message) })
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name != "together" && len(args) > 0 && args[0] == "together" {
		os.Exit(together(args[1:]))
	}
	if _, ok := commands[name]; !ok {
		if len(args) == 0 {
			usage()
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	newCommand, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "k3r-kube: unknown component %q\n", name)
		usage()
		os.Exit(2)
	}
	command := newCommand()
	command.SetArgs(args)
	os.Exit(cli.Run(command))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: k3r-kube <kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl> [flags]")
	fmt.Fprintln(os.Stderr, "       k3r-kube together <kube-apiserver|kubelet> [flags] --- <kube-controller-manager|kube-scheduler|kube-proxy> [flags] ...")
}
