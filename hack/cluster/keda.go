package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// cmdKEDA builds KEDA's operator and metrics server when they are not cached
// and prints export lines naming their directory and KEDA's CRDs (in its
// module, which the build downloaded), for the e2e tests that run KEDA beside
// opportunist and for `eval "$(go run ./hack/cluster keda)"`. Progress goes
// to stderr so stdout stays evaluable.
func cmdKEDA(p paths) error {
	s := kedaBuild()
	dir, err := ensureBuilt(p.cache, s, os.Stderr)
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the go command is not in PATH; it is needed to find KEDA's module")
	}
	mod, err := goModDownload(goBin, s.module, s.version)
	if err != nil {
		return err
	}
	fmt.Printf("export KEDA_BIN=%s\n", shellQuote(dir))
	fmt.Printf("export KEDA_CRDS=%s\n", shellQuote(filepath.Join(mod.Dir, "config", "crd", "bases")))
	return nil
}
