package scalerspec

import (
	"math"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

var fuzzResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, "nvidia.com/gpu"}

// FuzzParseHeadroom: parseHeadroom never panics; an error is one line that
// quotes the value; a success is either a non-negative quantity or a
// percent within [0, 100], and it survives a round trip through its text.
func FuzzParseHeadroom(f *testing.F) {
	for _, v := range []string{
		"30", "500m", "64Gi", "1", "0", "15%", "12.5%", "0%", "100%", "150%", "-1%", "x%", "%", "-1", "thirty", "",
		"1e3", "1E3", "0.5", "1Ki", "1k", "1M", "+5", "-0", "1e-3%", "1e2%", ".5%", "0x10%", "50 %", " 50%", "1%%",
		"9223372036854775", "9223372036854775m", "1e15", "1Pi",
		// found by fuzzing: wrapped around in int64, or NaN accepted as a percent
		"9227000000000000", "8Ei", "9223372036854775807k", "9227000000000000000", "NaN%", "nan%",
	} {
		for i := range fuzzResources {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, v string) {
		name := fuzzResources[int(which)%len(fuzzResources)]
		h, err := parseHeadroom(name, v)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.Contains(msg, strconv.Quote(v)) {
				t.Fatalf("parseHeadroom(%s, %q): error %q is not one line quoting the value", name, v, msg)
			}
			return
		}
		if pct, ok := strings.CutSuffix(v, "%"); ok {
			if h.Quantity != 0 {
				t.Fatalf("parseHeadroom(%s, %q) = %+v: a percent with a quantity", name, v, h)
			}
			if math.IsNaN(h.Percent) || h.Percent < 0 || h.Percent > 100 {
				t.Fatalf("parseHeadroom(%s, %q) = %+v: percent outside [0, 100]", name, v, h)
			}
			again, err := parseHeadroom(name, strconv.FormatFloat(h.Percent, 'g', -1, 64)+"%")
			if err != nil || again != h {
				t.Fatalf("parseHeadroom(%s, %q) = %+v, but its text %q reads back as %+v, %v", name, v, h, pct, again, err)
			}
			return
		}
		if h.Percent != 0 {
			t.Fatalf("parseHeadroom(%s, %q) = %+v: a quantity with a percent", name, v, h)
		}
		if h.Quantity < 0 {
			t.Fatalf("parseHeadroom(%s, %q) = %+v: negative quantity", name, v, h)
		}
		// The canonical amount, written back as a quantity, reads back the same.
		q := resource.NewQuantity(h.Quantity, resource.DecimalSI)
		if name == corev1.ResourceCPU {
			q = resource.NewMilliQuantity(h.Quantity, resource.DecimalSI)
		}
		again, err := parseHeadroom(name, q.String())
		if err != nil || again != h {
			t.Fatalf("parseHeadroom(%s, %q) = %+v, but %q reads back as %+v, %v", name, v, h, q.String(), again, err)
		}
	})
}
