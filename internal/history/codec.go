// Package history persists a pool's demand history (forecast.History) in
// the cluster, so that it survives restarts and failovers: a compact binary
// form (Encode, Decode), a Store of one ConfigMap per scaler in
// opportunist's own namespace, and a backfill from a Prometheus the user
// already runs. The codec is pure; the Store is the only Kubernetes I/O.
package history

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/opportunist/opportunist/internal/forecast"
)

// magic starts every encoded history; the byte after it is the version.
const magic = "OPPHIST"

// Version is the encoding's version. Decode refuses any other: an unknown
// version was written by a newer opportunist, whose history this one must
// not guess at.
const Version = 1

// Limits that keep a corrupt or hostile object from costing more than a
// real one could (a run of gaps is a few bytes for many samples): 69 days
// at one sample a minute per resource (14 are kept), 32 resources; at most
// 26 MB decoded.
const (
	maxSamples   = 100_000
	maxResources = 32
	maxNameLen   = 253
	// maxDecoded bounds the inflated body (a zip bomb stops here).
	maxDecoded = 64 << 20
)

// Encode returns the persisted form of h: the magic and version, then a
// gzip stream of the grid (start, step, keep) and, per resource in name
// order, its samples as runs: a run of gaps is one number, a run of values
// is the zigzag varint of each value's difference from the last known one.
// Demand is in whole canonical units (milli-cores, bytes, a count), so
// values are rounded to integers; a gap (NaN) stays a gap.
func Encode(h *forecast.History) ([]byte, error) {
	if h == nil {
		return nil, errors.New("history: nothing to encode")
	}
	if h.Step <= 0 {
		return nil, fmt.Errorf("history: step %v must be positive", h.Step)
	}
	if len(h.Demand) > maxResources {
		return nil, fmt.Errorf("history: %d resources, at most %d are kept", len(h.Demand), maxResources)
	}
	var body []byte
	body = binary.AppendVarint(body, h.Start.UnixNano())
	body = binary.AppendUvarint(body, uint64(h.Step))
	body = binary.AppendUvarint(body, uint64(max(h.Keep, 0)))
	names := make([]corev1.ResourceName, 0, len(h.Demand))
	for name := range h.Demand {
		names = append(names, name)
	}
	slices.Sort(names)
	body = binary.AppendUvarint(body, uint64(len(names)))
	for _, name := range names {
		vs := h.Demand[name]
		if name == "" || len(name) > maxNameLen {
			return nil, fmt.Errorf("history: resource name %q is not a resource name", name)
		}
		if len(vs) > maxSamples {
			return nil, fmt.Errorf("history: %s has %d samples, at most %d are kept", name, len(vs), maxSamples)
		}
		body = binary.AppendUvarint(body, uint64(len(name)))
		body = append(body, name...)
		body = binary.AppendUvarint(body, uint64(len(vs)))
		var err error
		if body, err = appendRuns(body, name, vs); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	out.WriteString(magic)
	out.WriteByte(Version)
	zw, _ := gzip.NewWriterLevel(&out, gzip.DefaultCompression) // a valid level: no error
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// appendRuns encodes vs as alternating runs: (length<<1 | 1) for a run of
// gaps, (length<<1) followed by that many zigzag deltas for a run of values.
func appendRuns(b []byte, name corev1.ResourceName, vs []float64) ([]byte, error) {
	var last int64
	for i := 0; i < len(vs); {
		j := i
		gap := math.IsNaN(vs[i])
		for j < len(vs) && math.IsNaN(vs[j]) == gap {
			j++
		}
		run := uint64(j - i)
		if gap {
			b = binary.AppendUvarint(b, run<<1|1)
			i = j
			continue
		}
		b = binary.AppendUvarint(b, run<<1)
		for ; i < j; i++ {
			v := vs[i]
			if math.IsInf(v, 0) || math.Abs(v) > 1<<62 {
				return nil, fmt.Errorf("history: %s sample %d is %v, not a demand", name, i, v)
			}
			n := int64(math.Round(v))
			b = binary.AppendVarint(b, n-last)
			last = n
		}
	}
	return b, nil
}

// Decode reads what Encode wrote. Anything else — another version, a
// truncated or altered object, impossible sizes — is an error that says
// what is wrong; it never panics and never allocates more than the limits.
func Decode(data []byte) (*forecast.History, error) {
	if len(data) < len(magic)+1 || string(data[:len(magic)]) != magic {
		return nil, errors.New("history: not an opportunist history (no header)")
	}
	if v := data[len(magic)]; v != Version {
		return nil, fmt.Errorf("history: encoding version %d, this opportunist reads version %d (written by another release?)", v, Version)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data[len(magic)+1:]))
	if err != nil {
		return nil, fmt.Errorf("history: corrupt: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
	if err != nil {
		return nil, fmt.Errorf("history: corrupt: %w", err)
	}
	if len(body) > maxDecoded {
		return nil, fmt.Errorf("history: corrupt: more than %d bytes once inflated", maxDecoded)
	}
	r := &reader{r: bufio.NewReader(bytes.NewReader(body))}
	start := r.varint("start")
	step := r.uvarint("step")
	keep := r.uvarint("keep")
	count := r.uvarint("resource count")
	if r.err != nil {
		return nil, r.err
	}
	if step == 0 || step > uint64(365*24*time.Hour) || keep > uint64(math.MaxInt64) {
		return nil, fmt.Errorf("history: corrupt: step %d ns, keep %d ns", step, keep)
	}
	if count > maxResources {
		return nil, fmt.Errorf("history: corrupt: %d resources (at most %d)", count, maxResources)
	}
	h := forecast.NewHistory(time.Unix(0, start).UTC(), time.Duration(step), time.Duration(keep))
	for range count {
		nameLen := r.uvarint("name length")
		if r.err == nil && (nameLen == 0 || nameLen > maxNameLen) {
			return nil, fmt.Errorf("history: corrupt: resource name of %d bytes", nameLen)
		}
		name := corev1.ResourceName(r.bytes(int(nameLen), "resource name"))
		n := r.uvarint("sample count")
		if r.err != nil {
			return nil, r.err
		}
		if n > maxSamples {
			return nil, fmt.Errorf("history: corrupt: %s has %d samples (at most %d)", name, n, maxSamples)
		}
		if _, dup := h.Demand[name]; dup {
			return nil, fmt.Errorf("history: corrupt: %s appears twice", name)
		}
		vs, err := r.runs(name, int(n))
		if err != nil {
			return nil, err
		}
		h.Demand[name] = vs
	}
	if r.err != nil {
		return nil, r.err
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return nil, errors.New("history: corrupt: bytes after the last resource")
	}
	return h, nil
}

// reader reads varints, keeping the first error.
type reader struct {
	r   *bufio.Reader
	err error
}

func (r *reader) fail(what string, err error) {
	if r.err == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("history: corrupt: reading the %s: %w", what, err)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(what, err)
	}
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(r.r)
	if err != nil {
		r.fail(what, err)
	}
	return v
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.fail(what, err)
	}
	return b
}

func (r *reader) runs(name corev1.ResourceName, n int) ([]float64, error) {
	vs := make([]float64, 0, n)
	var last int64
	for len(vs) < n {
		head := r.uvarint(string(name) + " run")
		if r.err != nil {
			return nil, r.err
		}
		run := head >> 1
		if run == 0 || run > uint64(n-len(vs)) {
			return nil, fmt.Errorf("history: corrupt: %s has a run of %d samples where %d remain", name, run, n-len(vs))
		}
		if head&1 == 1 {
			for range run {
				vs = append(vs, math.NaN())
			}
			continue
		}
		for range run {
			last += r.varint(string(name) + " sample")
			vs = append(vs, float64(last))
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	return vs, nil
}
