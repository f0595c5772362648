package main

import (
	"fmt"
	"os"
)

// cmdMetricsServer builds metrics-server when it is not cached and prints an
// export line naming its directory, for the e2e tests that run it beside
// opportunist and for `eval "$(go run ./hack/cluster metrics-server)"`.
// Progress goes to stderr so stdout stays evaluable.
func cmdMetricsServer(p paths) error {
	dir, err := ensureBuilt(p.cache, metricsServerBuild(), os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf("export METRICS_SERVER_BIN=%s\n", shellQuote(dir))
	return nil
}
