package sim

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// TestStepTrace: a row per workload at the first and last steps and
// wherever its state changed, never two equal states in a row otherwise;
// and the CSV reads back as written.
func TestStepTrace(t *testing.T) {
	sc, err := Builtin("seed-burst")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(sc, Options{Seed: 1, Strategies: []string{Opportunist, InstantLaw}, StepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	last := sc.Duration - sc.Step
	for _, strategy := range []string{Opportunist, InstantLaw} {
		var rows []StepRow
		for _, r := range rep.Steps {
			if r.Strategy == strategy {
				rows = append(rows, r)
			}
		}
		if len(rows) < 3 {
			t.Fatalf("%s: %d rows, want at least the first, a change and the last: %+v", strategy, len(rows), rows)
		}
		if rows[0].At != 0 || rows[len(rows)-1].At != last {
			t.Errorf("%s: rows from %s to %s, want from 0 to %s", strategy, rows[0].At, rows[len(rows)-1].At, last)
		}
		for i := 1; i < len(rows)-1; i++ {
			if rows[i].sameState(rows[i-1]) {
				t.Errorf("%s: rows %d and %d differ only in time: %+v", strategy, i-1, i, rows[i])
			}
			if rows[i].At <= rows[i-1].At {
				t.Errorf("%s: row %d at %s after %s", strategy, i, rows[i].At, rows[i-1].At)
			}
		}
		// 184 cores - 30 other paid - 2 x 4 sample app: 116 workers leave
		// 30 free; 17 sample apps (from 10m) leave room for 56.
		at := func(d time.Duration) StepRow {
			var out StepRow
			for _, r := range rows {
				if r.At <= d {
					out = r
				}
			}
			return out
		}
		for _, want := range []StepRow{
			{Strategy: strategy, At: 9 * time.Minute, Workload: "worker", Desired: 116, Current: 116, Bound: 116, FreeCPU: 30000},
			{Strategy: strategy, At: 14 * time.Minute, Workload: "worker", Desired: 56, Current: 56, Bound: 56, FreeCPU: 30000},
		} {
			got := at(want.At)
			got.At = want.At
			if got != want {
				t.Errorf("%s at %s: %+v, want %+v", strategy, want.At, got, want)
			}
		}
	}
	var buf bytes.Buffer
	if err := WriteStepTrace(&buf, rep.Steps); err != nil {
		t.Fatal(err)
	}
	back, err := ReadStepTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep.Steps) {
		t.Errorf("the CSV read back differs from what was written")
	}
}

func TestReadStepTraceErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "empty step trace: want the header [strategy seconds workload desired current bound paid_pending free_cpu]"},
		{"a,b,c,d,e,f,g,h\n", "step trace header [a b c d e f g h], want [strategy seconds workload desired current bound paid_pending free_cpu]"},
		{"strategy,seconds,workload,desired,current,bound,paid_pending,free_cpu\nx,1,w,many,1,1,0,1.000\n", `line 2: desired "many" is not an integer`},
		{"strategy,seconds,workload,desired,current,bound,paid_pending,free_cpu\nx,soon,w,1,1,1,0,1.000\n", `line 2: seconds "soon" is not a number`},
	} {
		if _, err := ReadStepTrace(bytes.NewReader([]byte(tt.in))); err == nil || err.Error() != tt.want {
			t.Errorf("ReadStepTrace(%q) = %v, want %s", tt.in, err, tt.want)
		}
	}
}
