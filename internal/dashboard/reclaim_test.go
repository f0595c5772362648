package dashboard

import (
	"encoding/json"
	"strings"
	"testing"
)

// reclaimSource has one node a reclaiming scaler's pool holds and one it
// does not.
type reclaimSource struct{ fakeSource }

func (reclaimSource) State() State {
	s := fakeSource{}.State()
	cpu := NodeResource{Unit: "cores", Allocatable: 32, Paid: 16, Opportunistic: 4, Free: 12}
	s.Views[0].Nodes = []Node{
		{Name: "n-1", State: "ready", CPU: cpu, Pods: 5, Reclaim: &NodeReclaim{Workload: "batch/worker", ReclaimableCores: 9.5, PublishedCores: 12,
			Formula: "0.9×32000m − 500m − 18000m − 800m = 9500m", UsageFresh: true}},
		{Name: "n-2", State: "ready", CPU: cpu, Pods: 5},
	}
	return s
}

func TestStateNodeReclaim(t *testing.T) {
	rec := get(t, NewHandler(reclaimSource{}), "/api/v1/state")
	var raw struct {
		Views []struct {
			Nodes []map[string]json.RawMessage `json:"nodes"`
		} `json:"views"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	ns := raw.Views[0].Nodes
	want := `{"workload":"batch/worker","reclaimableCores":9.5,"publishedCores":12,"formula":"0.9×32000m − 500m − 18000m − 800m = 9500m","usageFresh":true}`
	if got := string(ns[0]["reclaim"]); got != want {
		t.Errorf("n-1 reclaim = %s\nwant %s", got, want)
	}
	if r, ok := ns[1]["reclaim"]; ok {
		t.Errorf("a node no reclaiming pool holds has a reclaim field: %s", r)
	}
	js := get(t, NewHandler(reclaimSource{}), "/app.js").Body.String()
	if !strings.Contains(js, "reclaimLine(n.reclaim)") || !strings.Contains(js, `title="${esc(r.workload)}: ${esc(why)}"`) {
		t.Errorf("app.js does not draw a node's reclaimable room with its formula as the tooltip")
	}
}
