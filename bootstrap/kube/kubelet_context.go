package main

import (
	"context"

	genericapiserver "k8s.io/apiserver/pkg/server"
)

// contextForKubelet mirrors upstream cmd/kubelet: the kubelet stops when the
// process receives SIGTERM or SIGINT.
func contextForKubelet() context.Context {
	return genericapiserver.SetupSignalContext()
}
