//go:build tools

// Package images pins the upstream programs behind the e2e suite's test
// images that the kubernetes module does not hold: sample-apiserver
// (k8s.io/sample-apiserver, its own module) and etcd's server. A module of
// its own so that their dependencies do not move e2e.test's.
package images

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/sample-apiserver"
)
