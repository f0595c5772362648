package main

import (
	"fmt"
	"sort"
	"strings"
)

// goModInfo is the part of an upstream go.mod that a build module has to
// reproduce so the upstream binaries build as they do in their own repo.
type goModInfo struct {
	// Go is the go directive, e.g. "1.26.0".
	Go string
	// Godebug holds the godebug settings, e.g. "default=go1.26". They change
	// runtime behaviour, so the build module copies them.
	Godebug []string
	// LocalReplaces lists the required module paths that upstream replaces
	// with a directory of its own source tree (k8s.io/kubernetes'
	// ./staging/..., etcd's ../api). Outside that tree they must come from
	// the proxy instead. Replaced modules upstream does not require are left
	// out: etcd "replaces" go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY only to
	// keep it out of its build.
	LocalReplaces []string
	// VersionReplaces are upstream's replacements of one module version by
	// another (KEDA's fork of nexus-proto-annotations), as "from [v] => to v".
	// They apply only in the main module, so the build module copies them.
	VersionReplaces []string
	// Excludes are upstream's exclude directives ("module version"), for
	// the same reason.
	Excludes []string
}

// parseGoMod extracts goModInfo from the text of a go.mod file. It handles the
// single-line and the block form of replace and godebug.
func parseGoMod(text string) (goModInfo, error) {
	var info goModInfo
	required := map[string]bool{}
	var local []string
	block := "" // directive of the ( ... ) block we are in, if any
	for i, raw := range strings.Split(text, "\n") {
		line := raw
		if j := strings.Index(line, "//"); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		directive, rest := block, line
		switch {
		case block != "" && line == ")":
			block = ""
			continue
		case block == "":
			directive, rest, _ = strings.Cut(line, " ")
			rest = strings.TrimSpace(rest)
			if rest == "(" {
				block = directive
				continue
			}
		}
		switch directive {
		case "go":
			info.Go = rest
		case "require":
			if f := strings.Fields(rest); len(f) > 0 {
				required[f[0]] = true
			}
		case "godebug":
			info.Godebug = append(info.Godebug, strings.Join(strings.Fields(rest), ""))
		case "exclude":
			info.Excludes = append(info.Excludes, strings.Join(strings.Fields(rest), " "))
		case "replace":
			from, to, ok := strings.Cut(rest, "=>")
			if !ok {
				return goModInfo{}, fmt.Errorf("go.mod line %d: replace without =>: %q", i+1, raw)
			}
			fromFields, toFields := strings.Fields(from), strings.Fields(to)
			if len(fromFields) == 0 || len(toFields) == 0 {
				return goModInfo{}, fmt.Errorf("go.mod line %d: malformed replace: %q", i+1, raw)
			}
			target := toFields[0]
			// A directory replacement has no version and a path starting with
			// ./ or ../ (go.mod requires that prefix for local paths).
			if len(toFields) == 1 && (strings.HasPrefix(target, "./") || strings.HasPrefix(target, "../")) {
				local = append(local, fromFields[0])
			} else {
				info.VersionReplaces = append(info.VersionReplaces, strings.Join(fromFields, " ")+" => "+strings.Join(toFields, " "))
			}
		}
	}
	if info.Go == "" {
		return goModInfo{}, fmt.Errorf("go.mod has no go directive")
	}
	for _, m := range local {
		if required[m] {
			info.LocalReplaces = append(info.LocalReplaces, m)
		}
	}
	sort.Strings(info.LocalReplaces)
	return info, nil
}

// buildGoMod renders the go.mod of a throw-away module that requires
// module@version and points each of upstream's local replacements at the
// same module path at replaceVersion on the proxy (k8s.io/api => k8s.io/api
// v0.37.2 for Kubernetes v1.37.2), and copies upstream's version replaces and
// excludes. `go build -mod=mod` in that module then builds upstream's
// commands exactly as pinned.
func buildGoMod(name, module, version, replaceVersion string, info goModInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo %s\n", name, info.Go)
	for _, g := range info.Godebug {
		fmt.Fprintf(&b, "\ngodebug %s\n", g)
	}
	fmt.Fprintf(&b, "\nrequire %s %s\n", module, version)
	if len(info.LocalReplaces)+len(info.VersionReplaces) > 0 {
		b.WriteString("\nreplace (\n")
		for _, p := range info.LocalReplaces {
			fmt.Fprintf(&b, "\t%s => %s %s\n", p, p, replaceVersion)
		}
		for _, r := range info.VersionReplaces {
			fmt.Fprintf(&b, "\t%s\n", r)
		}
		b.WriteString(")\n")
	}
	if len(info.Excludes) > 0 {
		b.WriteString("\nexclude (\n")
		for _, e := range info.Excludes {
			fmt.Fprintf(&b, "\t%s\n", e)
		}
		b.WriteString(")\n")
	}
	return b.String()
}

// stagingVersion maps a Kubernetes release to the version its staging
// modules are published at: v1.37.2 -> v0.37.2.
func stagingVersion(k8sVersion string) (string, error) {
	rest, ok := strings.CutPrefix(k8sVersion, "v1.")
	if !ok || rest == "" {
		return "", fmt.Errorf("unexpected Kubernetes version %q (want v1.X.Y)", k8sVersion)
	}
	return "v0." + rest, nil
}
