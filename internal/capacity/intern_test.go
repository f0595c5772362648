package capacity

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"unsafe"
)

func internPod(ns, node, app string, cpu int64) Pod {
	return Pod{Namespace: ns, Name: "p", NodeName: node, Labels: map[string]string{"app": app, "tier": "web"},
		Requests: Resources{"cpu": cpu, "pods": 1}}
}

func TestInternerSharesEqualParts(t *testing.T) {
	in := NewInterner(0)
	a := in.Pod(internPod("ns", "n1", "shop", 100))
	b := in.Pod(internPod("ns", "n1", "shop", 100))
	if !reflect.DeepEqual(a, internPod("ns", "n1", "shop", 100)) {
		t.Fatalf("interning changed the pod: %+v", a)
	}
	if !sameMap(a.Labels, b.Labels) || !sameMap(a.Requests, b.Requests) {
		t.Error("equal labels or requests not shared")
	}
	if unsafeData(a.Namespace) != unsafeData(b.Namespace) || unsafeData(a.NodeName) != unsafeData(b.NodeName) {
		t.Error("equal strings not shared")
	}
	c := in.Pod(internPod("ns", "n1", "cart", 200))
	if sameMap(a.Labels, c.Labels) || sameMap(a.Requests, c.Requests) {
		t.Error("different labels or requests shared")
	}
	if c.Labels["app"] != "cart" || c.Requests["cpu"] != 200 {
		t.Errorf("wrong shared values: %v %v", c.Labels, c.Requests)
	}
	// Keys that would collide if pairs were simply concatenated.
	x := in.Pod(Pod{Labels: map[string]string{"ab": "c"}})
	y := in.Pod(Pod{Labels: map[string]string{"a": "bc"}})
	if sameMap(x.Labels, y.Labels) || y.Labels["a"] != "bc" {
		t.Errorf("distinct label sets shared: %v %v", x.Labels, y.Labels)
	}
	if empty := in.Pod(Pod{}); empty.Labels != nil || empty.Requests != nil {
		t.Errorf("empty pod got maps: %+v", empty)
	}
}

// TestInternerForgetsInGenerations: a full generation moves to the
// previous one, from which entries in use come back; older ones are gone,
// so the tables stay bounded.
func TestInternerForgetsInGenerations(t *testing.T) {
	in := NewInterner(4)
	first := in.Pod(internPod("ns", "n", "app-0", 1))
	for i := 1; i < 4; i++ { // fills the generation: the next new entry rotates it
		in.Pod(internPod("ns", "n", fmt.Sprint("app-", i), int64(i+1)))
	}
	in.Pod(internPod("ns", "n", "app-4", 5))
	if got := in.Pod(internPod("ns", "n", "app-0", 1)); !sameMap(got.Labels, first.Labels) {
		t.Error("an entry of the previous generation was not found")
	}
	for i := 5; i < 20; i++ {
		in.Pod(internPod("ns", "n", fmt.Sprint("app-", i), int64(i+1)))
	}
	for _, n := range []int{len(in.labels.cur), len(in.labels.prev), len(in.requests.cur), len(in.requests.prev), len(in.strings.cur), len(in.strings.prev)} {
		if n > 4 {
			t.Fatalf("a table grew past the limit: %d entries", n)
		}
	}
	if got := in.Pod(internPod("ns", "n", "app-0", 1)); sameMap(got.Labels, first.Labels) || !reflect.DeepEqual(got.Labels, first.Labels) {
		t.Error("a forgotten entry must come back as a new, equal map")
	}
}

func TestInternerConcurrent(t *testing.T) {
	in := NewInterner(8)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				p := in.Pod(internPod(fmt.Sprint("ns-", i%3), "n", fmt.Sprint("app-", (i+g)%13), int64(i%5)))
				if p.Labels["app"] != fmt.Sprint("app-", (i+g)%13) || p.Requests["cpu"] != int64(i%5) {
					t.Errorf("wrong pod: %+v", p)
					return
				}
			}
		})
	}
	wg.Wait()
}

func unsafeData(s string) *byte { return unsafe.StringData(s) }

// BenchmarkInternPod times interning a pod whose parts are known (the
// common case: another pod of its ReplicaSet came before).
func BenchmarkInternPod(b *testing.B) {
	in := NewInterner(0)
	p := Pod{Namespace: "team-1", Name: "svc-1-5d8f7c9b6-00001", NodeName: "ip-10-0-1-1.eu-west-1.compute.internal",
		Labels:   map[string]string{"app": "svc-1", "app.kubernetes.io/name": "svc-1", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "5d8f7c9b6"},
		Requests: Resources{"cpu": 250, "memory": 512 << 20, "pods": 1}}
	in.Pod(p)
	b.ReportAllocs()
	for b.Loop() {
		in.Pod(p)
	}
}
