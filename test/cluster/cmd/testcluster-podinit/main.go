// Command testcluster-podinit is the init process of one exec-pod container
// (see package podinit). The harness starts it as
//
//	testcluster-podinit SPEC.json
//
// with the status pipe as file descriptor 3.
package main

import (
	"fmt"
	"os"

	"dataworks.io/testcluster/podinit"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testcluster-podinit SPEC.json (started by testcluster)")
		os.Exit(2)
	}
	os.Exit(podinit.Main(os.Args[1], os.NewFile(3, "status")))
}
