// Command image builds the opportunist container image without a Docker
// engine: a static binary (CGO_ENABLED=0, -trimpath) on an empty base holding
// only /etc/passwd and /etc/group for the nonroot user (65532), /tmp, and the
// CA bundle, assembled with go-containerregistry. It writes an OCI layout with
// one multi-platform index and, per platform, a tarball `docker load` reads.
//
// It is the daemonless twin of the repository's Dockerfile (same layout, same
// user, same entrypoint); `make image` runs it.
//
// Why not ko: ko (v0.19.1) pulls its base image from a registry, and none is
// reachable here; offline it works only from a base pre-seeded by digest in
// $KOCACHE, and it puts the binary at /ko-app/opportunist. Assembling the
// image directly takes less and gives the Dockerfile's exact layout.
//
//	go run ./hack/image -version v0.1.0 -platforms linux/amd64,linux/arm64 -out _output/image
//
// The image is reproducible: file times and the creation time come from
// -created (SOURCE_DATE_EPOCH by default), so one source tree and one Go
// toolchain give one digest.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/google/go-containerregistry/pkg/name"
)

// The user every opportunist container runs as: distroless's "nonroot".
const (
	nonrootUID = 65532
	user       = "65532:65532"
	entrypoint = "/opportunist"
)

type options struct {
	Version    string   // the -X version stamped into the binary and the image tag
	Revision   string   // VCS revision for the org.opencontainers.image.revision label
	Repository string   // image name without tag, e.g. ghcr.io/opportunist/opportunist
	Platforms  []string // linux/<arch>
	LDFlags    string   // passed to go build as is (the Makefile's LDFLAGS)
	Out        string   // output directory
	Source     string   // module root holding ./cmd/opportunist
	CACerts    string   // CA bundle to copy to /etc/ssl/certs/ca-certificates.crt; "" for none
	Created    time.Time
	Go         string // the go command
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err == nil {
		err = build(opts, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var o options
	var platforms, created string
	fs.StringVar(&o.Version, "version", "dev", "version stamped into the binary and used as the image tag")
	fs.StringVar(&o.Revision, "revision", "", "VCS revision for the org.opencontainers.image.revision label")
	fs.StringVar(&o.Repository, "repository", "ghcr.io/opportunist/opportunist", "image repository (name without tag)")
	fs.StringVar(&platforms, "platforms", "linux/amd64", "comma-separated linux/<arch> platforms")
	fs.StringVar(&o.LDFlags, "ldflags", "", "go build -ldflags (default: -X .../internal/version.Version=<version>)")
	fs.StringVar(&o.Out, "out", "_output/image", "output directory")
	fs.StringVar(&o.Source, "source", ".", "module root holding ./cmd/opportunist")
	fs.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image; empty for none")
	fs.StringVar(&created, "created", os.Getenv("SOURCE_DATE_EPOCH"), "creation time in Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	fs.StringVar(&o.Go, "go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var errs []error
	for _, p := range strings.Split(platforms, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if goos, arch, ok := strings.Cut(p, "/"); !ok || goos != "linux" || arch == "" || strings.Contains(arch, "/") {
			errs = append(errs, fmt.Errorf("-platforms: %q is not linux/<arch>", p))
			continue
		}
		o.Platforms = append(o.Platforms, p)
	}
	if len(o.Platforms) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("-platforms: none given"))
	}
	secs := int64(0)
	if created != "" {
		var err error
		if secs, err = strconv.ParseInt(created, 10, 64); err != nil || secs < 0 {
			errs = append(errs, fmt.Errorf("-created: %q is not a Unix time in seconds", created))
		}
	}
	o.Created = time.Unix(secs, 0).UTC()
	if _, err := name.NewTag(o.Repository + ":" + tagOf(o.Version)); err != nil {
		errs = append(errs, fmt.Errorf("-repository %q with tag %q: %w", o.Repository, tagOf(o.Version), err))
	}
	if o.LDFlags == "" {
		o.LDFlags = "-X github.com/opportunist/opportunist/internal/version.Version=" + o.Version
	}
	return o, errors.Join(errs...)
}

// tagOf turns a version (git describe output) into a valid image tag.
func tagOf(version string) string {
	tag := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, version)
	if tag == "" || tag[0] == '.' || tag[0] == '-' {
		tag = "v" + tag
	}
	return tag
}

// build compiles one binary per platform, assembles the images and writes
// <out>/oci (an OCI layout) and <out>/opportunist-<tag>-linux-<arch>.tar.
func build(o options, log io.Writer) error {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	base, err := baseLayer(o)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(o.Repository + ":" + tagOf(o.Version))
	if err != nil {
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		arch := strings.TrimPrefix(p, "linux/")
		bin := filepath.Join(o.Out, "bin", "linux-"+arch, "opportunist")
		start := time.Now()
		if err := goBuild(o, arch, bin); err != nil {
			return err
		}
		img, err := assemble(o, arch, base, bin)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		tarPath := filepath.Join(o.Out, fmt.Sprintf("opportunist-%s-linux-%s.tar", tagOf(o.Version), arch))
		if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
			return fmt.Errorf("%s: writing %s: %w", p, tarPath, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "image: %s %s %s (%s; docker load -i %s)\n", p, tag, digest, time.Since(start).Round(time.Millisecond), tarPath)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	dir := filepath.Join(o.Out, "oci")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.Name(),
	})); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "image: %s %s (OCI layout %s)\n", tag, digest, dir)
	return nil
}

// goBuild builds a static binary: CGO_ENABLED=0 so no libc is linked and the
// empty base suffices; -trimpath so no build path leaks into it.
func goBuild(o options, arch, out string) error {
	cmd := exec.Command(o.Go, "build", "-trimpath", "-ldflags", o.LDFlags, "-o", out, "./cmd/opportunist")
	cmd.Dir = o.Source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w", arch, err)
	}
	return nil
}

func assemble(o options, arch string, base v1.Layer, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	app, err := layerOf(o.Created, []file{{name: "opportunist", mode: 0o755, data: data}})
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "opportunist",
		"org.opencontainers.image.description": "Keeps a Kubernetes cluster filled to a target level with preemptible work and yields room to paid work at once",
		"org.opencontainers.image.source":      "https://github.com/opportunist/opportunist",
		"org.opencontainers.image.url":         "https://github.com/opportunist/opportunist",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Config: v1.Config{
			User:       user,
			Entrypoint: []string{entrypoint},
			WorkingDir: "/",
			Labels:     labels,
		},
	})
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: o.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: /etc/passwd, /etc/group (nonroot 65532), /tmp, CA certificates"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "hack/image: /opportunist (CGO_ENABLED=0 go build -trimpath)"}},
	)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, created)
}

// baseLayer is what distroless/static:nonroot provides that a static Go
// binary uses: a passwd entry for its uid (so tools and libraries that look
// the user up find one), a writable-by-convention /tmp, and CA certificates.
func baseLayer(o options) (v1.Layer, error) {
	files := []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonrootUID},
		{name: "tmp/", mode: 0o1777},
	}
	if o.CACerts != "" {
		data, err := os.ReadFile(o.CACerts)
		if err != nil {
			return nil, fmt.Errorf("-ca-certs: %w", err)
		}
		files = append(files,
			file{name: "etc/ssl/", mode: 0o755},
			file{name: "etc/ssl/certs/", mode: 0o755},
			file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: data})
	}
	return layerOf(o.Created, files)
}

// file is one entry of a layer; a name ending in / is a directory.
type file struct {
	name string
	mode int64
	uid  int
	data []byte
}

// layerOf writes files, sorted, into an uncompressed tar with fixed times and
// owners so the layer digest depends on the contents alone.
func layerOf(mtime time.Time, files []file) (v1.Layer, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: mtime, Format: tar.FormatUSTAR}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
