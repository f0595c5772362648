package sim

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

// refHeap is timerHeap through container/heap: the order timerHeap keeps.
type refHeap []timer

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return timerHeap(h).less(i, j) }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *refHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// TestTimerHeapIsContainerHeap: timers that tie on time and seq (a pod's
// start-up and termination ending together) come out in container/heap's
// order, which results depend on.
func TestTimerHeapIsContainerHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var got timerHeap
	var want refHeap
	for op := range 20000 {
		if rng.IntN(3) > 0 || len(got) == 0 {
			tm := timer{at: time.Duration(rng.IntN(20)) * time.Second, seq: rng.IntN(5), ready: rng.IntN(2) == 0, node: op}
			got.push(tm)
			heap.Push(&want, tm)
			continue
		}
		if g, w := got.pop(), heap.Pop(&want).(timer); g != w {
			t.Fatalf("op %d: popped %+v, container/heap pops %+v", op, g, w)
		}
	}
}
