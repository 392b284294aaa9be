// Command etcd is upstream etcd's server (etcdmain), for the e2e suite's
// etcd test image: the aggregator spec runs it beside sample-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
