// Command opportunist keeps a Kubernetes cluster filled to a target level with
// preemptible work and gives the room back the moment paying work needs it.
package main

import (
	"fmt"
	"os"

	"github.com/opportunist/opportunist/internal/cli"
)

func main() {
	if err := cli.NewRoot(os.Args[0]).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
