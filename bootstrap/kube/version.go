package main

import (
	"fmt"
	"os"
	"strings"
	_ "unsafe" // go:linkname

	"k8s.io/component-base/version"
)

// The k3r that starts a component names itself in this variable
// (K3R_KUBE_BUILD_METADATA=k3r-v0.2.0); it joins the Kubernetes version as
// semver build metadata, as k3s's v1.35.8+k3s1, so that `kubectl get nodes
// -o wide` and `kubectl version` show which k3r runs where, and a node
// upgraded in place reports its new version without a new k3r-kube.
const buildMetadataEnv = "K3R_KUBE_BUILD_METADATA"

// client-go's version (kubectl's client version, user agents) has no
// setter: its ldflags target (scripts/build-kube) is set directly.
//
//go:linkname clientGitVersion k8s.io/client-go/pkg/version.gitVersion
var clientGitVersion string

func init() {
	metadata := os.Getenv(buildMetadataEnv)
	if metadata == "" {
		return
	}
	withMetadata := withBuildMetadata(version.Get().GitVersion, metadata)
	if err := version.SetDynamicVersion(withMetadata); err != nil {
		fmt.Fprintf(os.Stderr, "k3r-kube: ignoring %s=%q: %v\n", buildMetadataEnv, metadata, err)
		return
	}
	clientGitVersion = withBuildMetadata(clientGitVersion, metadata)
}

// withBuildMetadata replaces any build metadata of v by metadata.
func withBuildMetadata(v, metadata string) string {
	base, _, _ := strings.Cut(v, "+")
	return base + "+" + metadata
}
