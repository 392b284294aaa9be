package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// The separator between the components given to `together`.
const separator = "---"

// together runs several components in one process, as k3s runs its control
// plane: one Go runtime, and one copy of the state every package of this
// binary sets up at start (about 16 MiB of heap per process), instead of
// one per component.
//
//	k3r-kube together kube-apiserver FLAGS... --- kube-controller-manager FLAGS... --- kube-scheduler FLAGS...
//	k3r-kube together kubelet FLAGS... --- kube-proxy FLAGS...
//	k3r-kube together kube-apiserver FLAGS... --- k3r-front FLAGS...
//
// The first component runs exactly as it does alone and owns the signal
// handling. Each later one starts, in order, once the API server its
// --kubeconfig names is ready (kube-controller-manager gives up on an API
// server that is not healthy within 10 s). When any component returns, the
// process exits, so the supervisor restarts them together. A k3r-front
// group serves the supervisor listener with kube-apiserver's handler (see
// front.go).
func together(args []string) int {
	groups := splitGroups(args)
	if len(groups[0]) == 0 {
		usage()
		return 2
	}
	first, ok := commands[groups[0][0]]
	if !ok || !ownsSignals[groups[0][0]] {
		fmt.Fprintf(os.Stderr, "k3r-kube together: the first component must be kube-apiserver or kubelet, not %q\n", groups[0][0])
		return 2
	}
	later := [][]string{}
	var front *front
	for _, group := range groups[1:] {
		if len(group) > 0 && group[0] == frontName {
			if groups[0][0] != "kube-apiserver" {
				fmt.Fprintf(os.Stderr, "k3r-kube together: %s needs kube-apiserver as the first component\n", frontName)
				return 2
			}
			parsed, err := parseFront(group[1:])
			if err != nil {
				fmt.Fprintf(os.Stderr, "k3r-kube together: %s: %v\n", frontName, err)
				return 2
			}
			front = parsed
			continue
		}
		if len(group) == 0 || laterRunners[group[0]].run == nil {
			fmt.Fprintf(os.Stderr, "k3r-kube together: %q cannot run after the first component (kube-controller-manager, kube-scheduler or kube-proxy can)\n", strings.Join(group, " "))
			return 2
		}
		// A later component with bad flags is left out, so that it does
		// not take the others down with it at every restart (alone, it
		// would fail the same way while the rest ran).
		if err := laterRunners[group[0]].checkFlags(group[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "k3r-kube together: %s not started: %v\n", group[0], err)
			continue
		}
		later = append(later, group)
	}
	// Each component validates and applies the logging configuration;
	// the same configuration applied again is fine, a different one fails
	// that component with upstream's message.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	go startLater(later)
	go exitAfterStopSignal()
	// Either command sets up the process's signal handling: make one.
	var command *cobra.Command
	if front != nil {
		command = newAPIServerCommand(func(api http.Handler) { go front.serve(api) })
	} else {
		command = first()
	}
	command.SetArgs(groups[0][1:])
	return cli.Run(command)
}

// At a stop signal the first component shuts down as it does alone, but
// the later ones, which cannot be told to stop, keep their connections to
// kube-apiserver busy, and its graceful shutdown would wait a minute for
// them: the process ends at most stopGrace after the signal.
const stopGrace = time.Second

func exitAfterStopSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	time.Sleep(stopGrace)
	klog.InfoS("Stopping with the components that share this process", "grace", stopGrace)
	klog.Flush()
	os.Exit(0)
}

// splitGroups always returns at least one (possibly empty) group.
func splitGroups(args []string) [][]string {
	groups := [][]string{{}}
	for _, arg := range args {
		if arg == separator {
			groups = append(groups, []string{})
			continue
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], arg)
	}
	return groups
}

// Components that set up their own signal handling; only one can run in a
// process, and it goes first.
var ownsSignals = map[string]bool{"kube-apiserver": true, "kubelet": true}

type laterRunner struct {
	// checkFlags parses the flags on a throwaway instance of the command.
	checkFlags func(args []string) error
	run        func(ctx context.Context, args []string) error
}

var laterRunners = map[string]laterRunner{
	"kube-controller-manager": {
		checkFlags: func(args []string) error {
			return parseFlags(controllermanager.NewControllerManagerCommand(), args)
		},
		run: func(_ context.Context, args []string) error {
			return execute(controllermanager.NewControllerManagerCommand(), args)
		},
	},
	"kube-proxy": {
		checkFlags: func(args []string) error { return parseFlags(proxy.NewProxyCommand(), args) },
		run: func(_ context.Context, args []string) error {
			return execute(proxy.NewProxyCommand(), args)
		},
	},
	"kube-scheduler": {
		checkFlags: func(args []string) error {
			_, _, err := schedulerOptions(args)
			return err
		},
		run: runScheduler,
	},
}

func startLater(groups [][]string) {
	ctx := context.Background()
	for _, group := range groups {
		name, args := group[0], group[1:]
		if kubeconfig := flagValue(args, "kubeconfig"); kubeconfig != "" {
			if err := waitForAPIServer(ctx, name, kubeconfig); err != nil {
				fmt.Fprintf(os.Stderr, "k3r-kube together: %s: %v\n", name, err)
				os.Exit(1)
			}
		}
		klog.InfoS("Starting component in this process", "component", name)
		run := laterRunners[name].run
		go func() {
			err := run(ctx, args)
			if err == nil {
				err = errors.New("returned")
			}
			fmt.Fprintf(os.Stderr, "k3r-kube together: %s stopped: %v\n", name, err)
			klog.Flush()
			os.Exit(1)
		}()
	}
}

func execute(command *cobra.Command, args []string) error {
	// As cli.Run does for a component alone.
	command.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	command.SetArgs(args)
	return command.Execute()
}

func parseFlags(command *cobra.Command, args []string) error {
	command.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	return command.ParseFlags(args)
}

// runScheduler is kube-scheduler's command without its own signal handler
// (upstream's installs one, and a process can have only one).
func runScheduler(ctx context.Context, args []string) error {
	opts, fs, err := schedulerOptions(args)
	if err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	featureGate := opts.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(opts.Logs, featureGate); err != nil {
		return err
	}
	cliflag.PrintFlags(fs)
	cc, sched, err := scheduler.Setup(ctx, opts)
	if err != nil {
		return err
	}
	return scheduler.Run(ctx, cc, sched)
}

// schedulerOptions are kube-scheduler's options with args parsed.
func schedulerOptions(args []string) (*scheduleroptions.Options, *pflag.FlagSet, error) {
	opts := scheduleroptions.NewOptions()
	globalflag.AddGlobalFlags(opts.Flags.FlagSet("global"), "kube-scheduler", logs.SkipLoggingConfigurationFlags())
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	return opts, fs, fs.Parse(args)
}

// flagValue is the value of --name=value or --name value in args.
func flagValue(args []string, name string) string {
	for i, arg := range args {
		for _, prefix := range []string{"--" + name, "-" + name} {
			if value, ok := strings.CutPrefix(arg, prefix+"="); ok {
				return value
			}
			if arg == prefix && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}

// waitForAPIServer polls /readyz through the component's own kubeconfig.
func waitForAPIServer(ctx context.Context, component, kubeconfig string) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	config.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	logged := false
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		status := 0
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		if status != 200 && !logged {
			klog.InfoS("Waiting for the API server to be ready", "component", component)
			logged = true
		}
		return status == 200, nil
	})
}
