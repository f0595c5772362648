package sim

import (
	"strings"
	"testing"
	"time"
)

func TestParseTrace(t *testing.T) {
	tr, err := ParseTrace("t.csv", []byte("\ufefftime_s, name ,replicas\n600,web,5\n0,web,2\n0.5,api,1\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	web := tr.rows["web"]
	if len(web) != 2 || web[0].at != 0 || web[0].replicas != 2 || web[1].at != 10*time.Minute || web[1].line != 2 {
		t.Errorf("web rows %+v, want sorted by time with their lines", web)
	}
	if api := tr.rows["api"]; len(api) != 1 || api[0].at != 500*time.Millisecond {
		t.Errorf("api rows %+v", api)
	}
	if strings.Join(tr.order, ",") != "web,api" {
		t.Errorf("order %v", tr.order)
	}
}

func TestParseTraceErrors(t *testing.T) {
	tests := []struct {
		name, csv, want string
	}{
		{"empty", "", `t.csv: the file is empty: want the header "time_s,name,replicas"`},
		{"header only", "time_s,name,replicas\n", "t.csv: no rows after the header: add one row per change, like 0,web,2 (from 0 s, paid workload web wants 2 replicas)"},
		{"header and blank lines", "time_s,name,replicas\r\n\r\n", "t.csv: no rows after the header: add one row per change, like 0,web,2 (from 0 s, paid workload web wants 2 replicas)"},
		{"header", "time,name,replicas\n", `t.csv:1: the header must be "time_s,name,replicas", got "time,name,replicas"`},
		{"fields", "time_s,name,replicas\n0,web\n", "t.csv:2: want 3 fields (time_s,name,replicas), got 2"},
		{"time", "time_s,name,replicas\nsoon,web,1\n", `t.csv:2: time_s: "soon" is not a time in seconds from 0 to 31622400`},
		{"negative time", "time_s,name,replicas\n-5,web,1\n", `t.csv:2: time_s: "-5" is not a time in seconds from 0 to 31622400`},
		{"replicas", "time_s,name,replicas\n0,web,1.5\n", `t.csv:2: replicas: "1.5" is not a whole number of replicas, 0 or more`},
		{"name", "time_s,name,replicas\n0,,1\n", "t.csv:2: name: must name a paid workload"},
		{"twice", "time_s,name,replicas\n0,web,1\n0,web,2\n", "t.csv:3: time_s: web already has a row at 0 s (line 2)"},
		{"quotes", "time_s,name,replicas\n0,\"web,1\n", `t.csv:2: not valid CSV: extraneous or missing " in quoted-field`},
		{
			"several", "time_s,name,replicas\nx,web,1\n0,web,-1\n",
			`t.csv:2: time_s: "x" is not a time in seconds from 0 to 31622400; t.csv:3: replicas: "-1" is not a whole number of replicas, 0 or more`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTrace("t.csv", []byte(tt.csv))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v\nwant  %s", err, tt.want)
			}
		})
	}
}

func TestApplyTrace(t *testing.T) {
	sc, err := ParseScenario("small.yaml", []byte(minimal+`  # more paid load
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.Paid[0].Load.Noise = &Noise{Every: time.Minute, Replicas: 3}
	tr, err := ParseTrace("t.csv", []byte("time_s,name,replicas\n60,web,4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.ApplyTrace(tr); err != nil {
		t.Fatal(err)
	}
	got := sc.Paid[0].Load.schedule("web", 5*time.Minute, 1)
	want := []Step{{0, 1}, {time.Minute, 4}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("traced load %v, want %v: the trace replaces steps and noise, replicas hold before its first row", got, want)
	}
}

func TestApplyTracePastTheEnd(t *testing.T) {
	sc, err := ParseScenario("small.yaml", []byte(minimal), nil) // 1h
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ParseTrace("t.csv", []byte("time_s,name,replicas\n0,web,2\n3599.5,web,3\n3600,web,4\n7200,api,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = sc.ApplyTrace(tr)
	want := `t.csv:4: time_s: 3600 s is not before the end of scenario small (duration 1h0m0s, 3600 s): the row would never apply; drop it or lengthen the scenario's duration; ` +
		`t.csv:5: name: "api" is not a paid workload of scenario small (paid: web); ` +
		`t.csv:5: time_s: 7200 s is not before the end of scenario small (duration 1h0m0s, 3600 s): the row would never apply; drop it or lengthen the scenario's duration`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
	if sc.Paid[0].Load.Traced {
		t.Error("a bad trace changed the scenario")
	}
}
